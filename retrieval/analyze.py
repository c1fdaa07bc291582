"""Reading and tokenizing post files, in a process pool when there are many."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from .dates import timezone
from .index import DocTerms
from .loader import MalformedPost, parse_post
from .phrases import text_of
from .post import Post
from .tokenizer import Tokenizer

#: Below this many files a pool costs more than it saves.
POOL_THRESHOLD = 200
Progress = Callable[[int], None]


@dataclass(slots=True)
class Analysis:
    """One file: its stat and digest, and either its post and terms or why it was skipped."""

    rel: str
    size: int
    mtime_ns: int
    digest: str
    post: Post | None = None
    terms: DocTerms | None = None
    text: bytes | None = None
    reason: str | None = None
    warnings: list[str] = field(default_factory=list)


def analyze(path: Path, rel: str, tz_name: str, tokenizer: Tokenizer) -> Analysis:
    """Read, parse and tokenize one file. Never raises for a bad file: ``reason`` says why."""
    try:
        st = path.stat()
        data = path.read_bytes()
    except OSError as exc:
        return Analysis(rel, 0, 0, "", reason=f"cannot read: {exc.strerror or exc}")
    result = Analysis(rel, st.st_size, st.st_mtime_ns, hashlib.blake2b(data, digest_size=16).hexdigest())
    try:
        parsed = parse_post(data, rel, timezone(tz_name))
    except MalformedPost as exc:
        result.reason = exc.reason
        return result
    result.post, result.warnings = parsed.post, parsed.warnings
    result.terms = DocTerms.count(tokenizer.tokenize(parsed.post.title), tokenizer.tokenize(parsed.post.body))
    result.text = text_of(parsed.post.title, parsed.post.body).encode()
    return result


_worker: tuple[str, Tokenizer] | None = None


def _init_worker(tz_name: str, user_dict: str | None) -> None:
    global _worker
    _worker = (tz_name, Tokenizer(Path(user_dict) if user_dict else None))


def _analyze_in_worker(job: tuple[str, str]) -> Analysis:
    assert _worker is not None
    return analyze(Path(job[0]), job[1], _worker[0], _worker[1])


def analyze_many(
    jobs: list[tuple[Path, str]],
    tz_name: str,
    tokenizer: Tokenizer,
    workers: int | None = None,
    progress: Progress | None = None,
) -> Iterator[Analysis]:
    """Analyze (path, relative name) pairs, in order; with a pool of ``workers`` processes
    (default: one per core) when there are many."""
    workers = workers or os.cpu_count() or 1
    if len(jobs) < POOL_THRESHOLD or workers < 2:
        for path, rel in jobs:
            yield analyze(path, rel, tz_name, tokenizer)
            if progress:
                progress(1)
        return
    user_dict = str(tokenizer.user_dict) if tokenizer.user_dict else None
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(tz_name, user_dict)) as pool:
        chunk = max(16, min(256, len(jobs) // (workers * 8)))
        for result in pool.map(_analyze_in_worker, [(str(p), r) for p, r in jobs], chunksize=chunk):
            yield result
            if progress:
                progress(1)
