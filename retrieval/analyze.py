"""Reading and tokenizing post files, in worker processes when there are many."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from datetime import datetime
from datetime import timezone as dt_timezone
from pathlib import Path
from typing import Callable, Iterator

from .dates import timezone
from .index import DocTerms
from .hexo import Site
from .loader import MAX_POST_BYTES, MalformedPost, Unpublished, parse_post, too_large
from .phrases import text_of
from .post import Post
from .tokenizer import Tokenizer

#: Below this many files worker processes cost more than they save.
POOL_THRESHOLD = 200
#: Files per round trip to a worker.
BATCH_FILES = 64
Progress = Callable[[int], None]


@dataclass(slots=True)
class Analysis:
    """One file: its stat and digest, and either its post and terms or why it was skipped
    (and, for a reason that time removes, when to look again: ``recheck_at``, epoch seconds)."""

    rel: str
    size: int
    mtime_ns: int
    digest: str
    post: Post | None = None
    terms: DocTerms | None = None
    text: bytes | None = None
    reason: str | None = None
    warnings: list[str] = field(default_factory=list)
    recheck_at: float | None = None
    #: Skipped because Hexo would not publish it: any earlier version must go too.
    unpublished: bool = False


@dataclass(frozen=True, slots=True)
class Setup:
    """What reading a file needs beyond the file (sent once to each worker)."""

    tz_name: str
    user_dict: str | None = None
    site: Site | None = None


def _read(path: Path) -> tuple[os.stat_result, bytes | None]:
    """The file's stat and bytes; None for the bytes of a file over the size limit, which
    is never read (the limit is checked on the open file, then enforced on the read)."""
    with path.open("rb") as fh:
        st = os.fstat(fh.fileno())
        if st.st_size > MAX_POST_BYTES:
            return st, None
        data = fh.read(MAX_POST_BYTES + 1)
    return st, data if len(data) <= MAX_POST_BYTES else None


def analyze(path: Path, rel: str, setup: Setup, tokenizer: Tokenizer) -> Analysis:
    """Read, parse and tokenize one file. Never raises for a bad file: ``reason`` says why."""
    try:
        st, data = _read(path)
    except OSError as exc:
        return Analysis(rel, 0, 0, "", reason=f"cannot read: {exc.strerror or exc}")
    if data is None:
        return Analysis(rel, st.st_size, st.st_mtime_ns, "", reason=too_large())
    result = Analysis(rel, st.st_size, st.st_mtime_ns, hashlib.blake2b(data, digest_size=16).hexdigest())
    try:
        file_time = datetime.fromtimestamp(st.st_mtime_ns / 1e9, dt_timezone.utc)
        parsed = parse_post(data, rel, timezone(setup.tz_name), setup.site, file_time=file_time)
    except Unpublished as exc:
        result.reason, result.recheck_at, result.unpublished = exc.reason, exc.recheck_at, True
        return result
    except MalformedPost as exc:
        result.reason = exc.reason
        return result
    post = parsed.post
    result.post, result.warnings = post, parsed.warnings
    result.terms = DocTerms.count(tokenizer.tokenize(post.title), tokenizer.tokenize(post.searchable_body))
    result.text = text_of(post.title, post.searchable_body).encode()
    return result


def worker_setup(setup: Setup) -> tuple[Setup, Tokenizer]:
    """A worker's state: the setup and its own tokenizer."""
    return setup, Tokenizer(Path(setup.user_dict) if setup.user_dict else None)


def analyze_batch(state: tuple[Setup, Tokenizer], batch: list[tuple[str, str]]) -> list[Analysis]:
    setup, tokenizer = state
    return [analyze(Path(path), rel, setup, tokenizer) for path, rel in batch]


def analyze_many(
    jobs: list[tuple[Path, str]],
    setup: Setup,
    tokenizer: Tokenizer,
    workers: int | None = None,
    progress: Progress | None = None,
) -> Iterator[Analysis]:
    """Analyze (path, relative name) pairs, in order; with ``workers`` processes (default:
    one per core) when there are many (see :mod:`retrieval.workers`)."""
    from .workers import WorkerPool

    workers = workers or os.cpu_count() or 1
    if len(jobs) < POOL_THRESHOLD or workers < 2:
        for path, rel in jobs:
            yield analyze(path, rel, setup, tokenizer)
            if progress:
                progress(1)
        return
    pairs = [(str(p), r) for p, r in jobs]
    batches = [pairs[i : i + BATCH_FILES] for i in range(0, len(pairs), BATCH_FILES)]
    user_dict = str(tokenizer.user_dict) if tokenizer.user_dict else None
    with WorkerPool(workers, Setup(setup.tz_name, user_dict, setup.site)) as pool:
        for results in pool.map(batches):
            yield from results
            if progress:
                progress(len(results))
