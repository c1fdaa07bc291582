"""Reading and tokenizing post files, in worker processes when there are many.

A worker numbers the terms it meets itself and sends each batch's postings back as three flat
arrays, with the terms new to it since its last batch: every term string crosses the pipe
once per worker, not once per post, and the parent maps a batch's numbers onto the index's
vocabulary with one array lookup (:class:`TermMap`). The parent then has no per-token work.
"""

from __future__ import annotations

import hashlib
import logging
import os
from array import array
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from datetime import timezone as dt_timezone
from pathlib import Path

import numpy as np

from .dates import timezone
from .docstore import Filed, document
from .hexo import Site
from .index import DocTerms
from .loader import MAX_POST_BYTES, MalformedPost, Unpublished, parse_post, too_large
from .native import beside, native
from .stored import Codec
from .strings import Strings
from .tokenizer import Tokenizer, filter_tokens

log = logging.getLogger(__name__)

#: Below this many files worker processes cost more than they save.
POOL_THRESHOLD = 200
#: Files per round trip to a worker.
BATCH_FILES = 64
#: Tokenized once by :func:`worker_setup`, for what the tokenizer loads on first use.
WARM_UP_TEXT = "新闻联播 News 2019"
Progress = Callable[[int], None]


@dataclass(slots=True)
class Analysis:
    """One file: its stat and digest, and either its post (as the store files it: ``filed``,
    and keeps it: ``document``, a frame of the store's when ``frame_key`` names its dictionary)
    and where its terms are in its :class:`Batch` (``span``: the rows of the batch's postings
    and the post's length in tokens), or why it was skipped (and, for a reason that time
    removes, when to look again: ``recheck_at``, epoch seconds)."""

    rel: str
    size: int
    mtime_ns: int
    digest: str
    filed: Filed | None = None
    document: bytes | None = None
    frame_key: bytes | None = None
    span: tuple[int, int, int] | None = None
    reason: str | None = None
    warnings: list[str] = field(default_factory=list)
    recheck_at: float | None = None
    #: Skipped because Hexo would not publish it: any earlier version must go too.
    unpublished: bool = False

    def __reduce__(self) -> tuple:
        """Pickled as the constructor and its fields in order (a worker sends 64 of these a
        batch): dumping and loading took 15 µs a post instead of 19 as slots set one by one."""
        return Analysis, tuple(getattr(self, name) for name in self.__slots__)


@dataclass(frozen=True, slots=True)
class Setup:
    """What reading a file needs beyond the file (sent once to each worker)."""

    tz_name: str
    user_dict: str | None = None
    site: Site | None = None


@dataclass(slots=True)
class Batch:
    """A batch's analyses and their postings: rows ``span[0]:span[1]`` of ``terms`` (the
    worker's own term numbers, the vocabulary's once :meth:`TermMap.translate` has been),
    ``tfs`` and ``in_title`` are one post's; ``new_terms`` are the worker's terms numbered
    since its previous batch, in order."""

    analyses: list[Analysis]
    new_terms: list[str]
    terms: np.ndarray
    tfs: np.ndarray
    in_title: np.ndarray
    source: int = 0

    def __len__(self) -> int:
        return len(self.analyses)

    def terms_of(self, analyses: list[Analysis]) -> DocTerms:
        """The postings of ``analyses``, posts of this batch that follow each other and each
        have a span, as one :class:`~retrieval.index.DocTerms` (views, not copies)."""
        spans = [a.span for a in analyses]
        lo, hi = spans[0][0], spans[-1][1]  # type: ignore[index]
        rows = np.fromiter((end - start for start, end, _ in spans), np.int64, len(spans))  # type: ignore[misc]
        if int(rows.sum()) != hi - lo:
            raise ValueError("the posts' rows do not follow each other")
        lengths = np.fromiter((length for _, _, length in spans), np.int32, len(spans))  # type: ignore[misc]
        return DocTerms(self.terms[lo:hi], self.tfs[lo:hi], self.in_title[lo:hi], rows, lengths)


def count_terms(title_tokens: list[str], body_tokens: list[str], numbers: dict[str, int],
                new: list[str], stopwords: frozenset[str]) -> tuple[bytes, bytes, int, int]:
    """The distinct terms of a title and body (the tokens :func:`filter_tokens` keeps), the
    title's first, each in first-seen order: their numbers in ``numbers`` and their counts, as
    int32 bytes, how many the title has, and how many tokens were counted (the post's length). A
    term not numbered yet gets the next number and is appended to ``new``. (The C extension's
    ``count_terms`` is the fast twin, with its own table of numbers, ``Terms``, which holds the
    stop words too.)"""
    title_tokens, body_tokens = filter_tokens(title_tokens, stopwords), filter_tokens(body_tokens, stopwords)
    counts = Counter(title_tokens)
    titled = len(counts)  # the title's terms come first in the counter (insertion order)
    counts.update(body_tokens)
    before = len(numbers)
    setdefault = numbers.setdefault
    ids = [setdefault(term, len(numbers)) for term in counts]  # a new term gets the next number
    if len(numbers) > before:
        new.extend(term for term, number in zip(counts, ids) if number >= before)
    return (array("i", ids).tobytes(), array("i", counts.values()).tobytes(), titled,
            len(title_tokens) + len(body_tokens))


class TermCounter:
    """A worker's side: counts a post's tokens under the worker's own term numbers (the C
    extension's ``Terms`` when it is built, a dict otherwise), leaving ``stopwords`` out."""

    def __init__(self, stopwords: frozenset[str]) -> None:
        self._stopwords = stopwords
        self._numbers: dict[str, int] | Any = native.Terms(stopwords) if native is not None else {}
        self._new: list[str] = []
        self.terms, self.tfs, self.in_title = array("i"), array("i"), array("b")

    def count(self, title_segments: list[str], body_segments: list[str]) -> tuple[int, int, int]:
        """Append a post's distinct terms (title and body form one text, as rank-bm25 sees
        it; ``*_segments``: the segmenter's tokens, which are filtered as they are counted, see
        :meth:`~retrieval.tokenizer.Tokenizer.segments`) to the batch; returns its span (first
        row, end row, length in tokens)."""
        lo = len(self.terms)
        if isinstance(self._numbers, dict):
            counted = count_terms(title_segments, body_segments, self._numbers, self._new, self._stopwords)
        else:
            counted = native.count_terms(title_segments, body_segments, self._numbers, self._new)
        ids, tfs, titled, length = counted
        self.terms.frombytes(ids)
        self.tfs.frombytes(tfs)
        self.in_title.frombytes(b"\1" * titled + b"\0" * (len(self.terms) - lo - titled))
        return lo, len(self.terms), length

    def batch(self, analyses: list[Analysis]) -> Batch:
        """The batch so far, and a fresh one begun."""
        batch = Batch(analyses, self._new, np.frombuffer(self.terms, np.int32),
                      np.frombuffer(self.tfs, np.int32), np.frombuffer(self.in_title, np.int8).view(np.bool_),
                      os.getpid())
        self._new = []
        self.terms, self.tfs, self.in_title = array("i"), array("i"), array("b")
        return batch


class TermMap:
    """The parent's side: one worker's term numbers -> the index vocabulary's (a term keeps its
    number when the index is saved and loaded again, so the map holds across checkpoints)."""

    def __init__(self) -> None:
        self._to_vocab = np.zeros(0, np.int32)

    def translate(self, batch: Batch, vocab: Strings) -> None:
        """Number the batch's terms as ``vocab`` does (adding the worker's new terms to it: a
        term of a post that is then skipped costs one entry)."""
        if batch.new_terms:
            added = np.asarray(vocab.add_all(batch.new_terms), np.int32)
            self._to_vocab = np.concatenate([self._to_vocab, added])
        batch.terms = self._to_vocab[batch.terms]


def _read(path: str | Path) -> tuple[os.stat_result, bytes | None]:
    """The file's stat and bytes; None for the bytes of a file over the size limit, which
    is never read (the limit is checked on the open file, then enforced on the read). The
    first read asks for the size the stat gave and one byte more, not for the limit: asking
    for 5 MiB allocated (and gave back) 5 MiB a file, 18 µs of a post's 28 µs read. When it
    gets less than it asked for, that was the end of the file, and no read is made to say so.
    A descriptor, not a file object: 7.0-7.2 µs a news post instead of 8.9-9.0."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if st.st_size > MAX_POST_BYTES:
            return st, None
        data = os.read(fd, st.st_size + 1)
        if len(data) <= st.st_size:
            return st, data
        chunks, size = [data], len(data)
        while size <= MAX_POST_BYTES:  # until the end, should the file have grown
            more = os.read(fd, MAX_POST_BYTES + 1 - size)
            if not more:
                break
            chunks.append(more)
            size += len(more)
    finally:
        os.close(fd)
    return st, b"".join(chunks) if size <= MAX_POST_BYTES else None


@contextmanager
def reading_ahead(paths: list[str]) -> Iterator[None]:
    """While the body runs, a thread asks the kernel to read ``paths`` into the page cache
    (the C extension's ``will_need``, which holds no GIL), so that a worker reading files one by
    one does not leave its core idle while each comes from the disk: one process analyzing
    files cold took 431–448 µs a file instead of 551–667. (In the two-worker build it changed
    nothing measurable: there the other processes take a waiting worker's core.) Without the
    extension, nothing is read ahead."""
    if len(paths) < 2:  # (nothing to read ahead of)
        yield
        return
    with beside("will_need", [os.fsencode(p) for p in paths]):
        yield


def analyze(path: str | Path, rel: str, setup: Setup, tokenizer: Tokenizer, counter: TermCounter | None = None) -> Analysis:
    """Read, parse and tokenize one file (its terms counted by ``counter``, else a fresh
    one). Never raises for a bad file: ``reason`` says why."""
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
    result.filed, result.warnings = Filed.of(post), parsed.warnings
    counter = counter if counter is not None else TermCounter(tokenizer.stopwords)
    result.span = counter.count(tokenizer.segments(post.title), tokenizer.segments(post.searchable_body))
    result.document = document(post)
    return result


@dataclass(slots=True)
class WorkerState:
    """What a worker keeps between batches: its tokenizer, its term numbers, and once the
    store has a dictionary, the store's :class:`~retrieval.stored.Codec` (see :meth:`update`)."""

    setup: Setup
    tokenizer: Tokenizer
    counter: TermCounter = field(init=False)
    codec: Codec | None = None

    def __post_init__(self) -> None:
        self.counter = TermCounter(self.tokenizer.stopwords)

    def update(self, dictionary: bytes) -> None:
        """Compress each post with the store's ``dictionary`` from the next batch on (sent by
        the parent once the store has one: see :func:`analyze_many`)."""
        self.codec = Codec(dictionary)

    def compress(self, analyses: list[Analysis]) -> None:
        """Make the batch's documents the store's frames, one after another, so that zstd's
        tables stay in the processor's caches between two: the workers' CPU grew by about 20
        µs a post (in alternating builds of 200,000 posts), the main process's, where each
        post's other work pushed the tables out between two, fell by 32."""
        if self.codec is None:
            return
        compress, key = self.codec.compress, self.codec.key
        for a in analyses:
            if a.document is not None:
                a.document, a.frame_key = compress(a.document), key


def worker_setup(setup: Setup) -> WorkerState:
    """A worker's state: the setup, its own tokenizer and its own term numbers, with all that
    the tokenizer loads on first use loaded now (the segmenter's dictionary, the tables of
    :func:`~retrieval.tokenizer.normalize`), so that workers forked from one such state share
    it (see :mod:`retrieval.workers`)."""
    state = WorkerState(setup, Tokenizer(Path(setup.user_dict) if setup.user_dict else None))
    state.tokenizer.segments(WARM_UP_TEXT)
    return state


def analyze_batch(state: WorkerState, batch: list[tuple[str, str]]) -> Batch:
    with reading_ahead([path for path, _ in batch]):
        analyses = [analyze(path, rel, state.setup, state.tokenizer, state.counter) for path, rel in batch]
    state.compress(analyses)
    return state.counter.batch(analyses)


def default_workers() -> int:
    """Worker processes for a build: one per core this process may run on, and one more (on
    two cores or more; on one, the files are read in this process). The parent takes a share
    of a core, and a worker waits for its next batch and for the disk, so two workers left the
    two cores of the benchmark's host 9-10% idle; three left them 5-6% idle and took no more
    CPU a post (200,000 posts, cache dropped, five alternating pairs: 0.94 of the two cores
    busy against 0.90), at about 60 MB more memory (a worker shares the zygote's pages)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # (not on every system)
        cores = os.cpu_count() or 1
    return cores + 1 if cores >= 2 else 1


def analyze_many(
    rels: Sequence[str],
    path_of: Callable[[str], str],
    setup: Setup,
    tokenizer: Tokenizer,
    vocab: Callable[[], Strings],
    workers: int | None = None,
    progress: Progress | None = None,
    dictionary: Callable[[], bytes] = lambda: b"",
) -> Iterator[Batch]:
    """Analyze the files named ``rels`` (relative names; ``path_of`` gives each one's path), in
    order, a batch at a time, their terms numbered in the vocabulary ``vocab()`` returns when a
    batch comes (the caller may load its index again between two batches, or within one: a term
    keeps its number, see :meth:`Archive._analyze`); with
    ``workers`` processes (default: :func:`default_workers`) when there are many (see
    :mod:`retrieval.workers`). Batches are made as they are sent, so a build never holds the
    (path, name) pairs of all its files at once. Once ``dictionary()``, the store's trained
    dictionary, is not empty (a build trains it on its first posts), the posts of the batches
    sent after come as the store's frames. Should the workers fail (the kernel kills one
    for memory, say), the files not analyzed yet are read in this process, with a warning."""
    from .workers import WorkerError, WorkerPool

    workers = workers or default_workers()
    maps: dict[int, TermMap] = {}
    done = 0
    if len(rels) >= POOL_THRESHOLD and workers >= 2:
        user_dict = str(tokenizer.user_dict) if tokenizer.user_dict else None
        try:
            with WorkerPool(workers, Setup(setup.tz_name, user_dict, setup.site)) as pool:
                given = _Given(dictionary, pool.update)
                for batch in _translated(pool.map(_batches(rels, path_of)), maps, vocab, given, progress):
                    yield batch
                    done += len(batch)
        except WorkerError as exc:  # (killed, say, by the kernel for memory): the rest here
            log.warning("%s; reading the %d files left in this process", exc, len(rels) - done)
        else:
            return
    state = WorkerState(setup, tokenizer)
    given = _Given(dictionary, state.update)
    results = (analyze_batch(state, batch) for batch in _batches(rels, path_of, start=done))
    yield from _translated(results, maps, vocab, given, progress)


class _Given:
    """Hands the store's dictionary to whoever compresses the posts (the workers, or this
    process's :class:`WorkerState`) when it first has one: at once, and after each batch."""

    def __init__(self, dictionary: Callable[[], bytes], give: Callable[[bytes], None]) -> None:
        self._dictionary, self._give, self._given = dictionary, give, b""
        self()

    def __call__(self) -> None:
        current = self._dictionary()
        if current and current is not self._given and current != self._given:
            self._given = current
            self._give(current)


def _batches(rels: Sequence[str], path_of: Callable[[str], str], start: int = 0) -> Iterator[list[tuple[str, str]]]:
    """(path, name) batches of :data:`BATCH_FILES` from ``rels[start:]``, made as they are taken."""
    for i in range(start, len(rels), BATCH_FILES):
        yield [(path_of(rel), rel) for rel in rels[i : i + BATCH_FILES]]


def _translated(batches: Iterator[Batch], maps: dict[int, TermMap], vocab: Callable[[], Strings],
                given: _Given, progress: Progress | None) -> Iterator[Batch]:
    for batch in batches:
        term_map = maps.get(batch.source) or maps.setdefault(batch.source, TermMap())
        term_map.translate(batch, vocab())
        yield batch
        given()
        if progress:
            progress(len(batch.analyses))
