"""The archive: posts loaded from a content directory, indexed, searchable, kept in sync."""

from __future__ import annotations

import ctypes
import functools
import gc
import logging
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

from .analyze import Analysis, Batch, Setup, analyze_many
from .bm25 import BM25Params
from .dates import DEFAULT_TIMEZONE, timezone
from .docstore import LABEL_KINDS, UNDATED, DocStore, LabelLists, PostIds
from .files import COLUMNS, FileEntry, FileTable
from .hexo import SiteError, find_site
from .index import DocTerms, InvertedIndex
from .matching import PostMatcher
from .post import Post
from .gaps import DocGaps
from .postings import Segment
from .query import Query, parse_query
from .scan import ContentScanner, FileStat, ScanChanges
from .search import Ranking, Searcher, SearchPage, query_tokens
from .storage import CorruptIndex, IndexDir
from .stored import DamagedDocument, FrameStore
from .strings import Strings

log = logging.getLogger(__name__)

FORMAT_VERSION = 6
#: Compact (drop dead documents) at a merge when this share of documents is dead.
COMPACT_DEAD_SHARE = 0.25
#: Reading an index a writer is committing to can meet a manifest whose old files were just
#: deleted: read the manifest again this many times before calling the index damaged.
LOAD_ATTEMPTS = 4
LOAD_RETRY_SECONDS = 0.05
#: A refresh that reads more files than this merges, saves and reloads the index after each
#: this many (:meth:`Archive._checkpoint`): a build's memory is that of this many posts, not
#: of the whole archive.
CHECKPOINT_FILES = 200_000
#: ``access`` values of :meth:`Archive.open`.
ACCESS = ("auto", "write", "read")
#: The arrays saved beside the blob of a string table (terms, file names, post ids).
STRING_ARRAYS = ("offsets", "hashes", "order")


#: A refresh that reads at least this many files runs the cyclic garbage collector less often
#: meanwhile: its youngest generation is collected after this many new objects, not 700.
FEWER_COLLECTIONS_FILES = 1000
FEWER_COLLECTIONS_THRESHOLD = 50_000


@contextmanager
def _collecting_less(many: bool = True) -> Iterator[None]:
    """While the body reads many files (``many``: a build, or a refresh of at least
    :data:`FEWER_COLLECTIONS_FILES`), the collector's first threshold is
    :data:`FEWER_COLLECTIONS_THRESHOLD`. A build's main process holds millions of container
    objects (file entries, label lists, the batches waiting) and makes dozens a post, nearly
    none of them in cycles; at the default threshold the collector ran 10,323 times in a
    million-post build, 57 of them walking every object, for 19.9 s of the process's CPU; at
    50,000, 117 times for 4.2 s (123 µs a post instead of 133). The threshold is the
    process's, so it is put back at the end, whatever happens."""
    if not many:
        yield
        return
    before = gc.get_threshold()
    gc.set_threshold(FEWER_COLLECTIONS_THRESHOLD, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


def _give_back_freed_memory() -> None:
    """Return the memory a build freed to the system (glibc keeps freed heap pages, and a
    process that served after a build would hold hundreds of megabytes it no longer uses)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


class ArchiveError(ValueError):
    """The archive cannot be opened as configured (no content directory, an index path that
    is a file or inside the content…); the message says what to change."""


@dataclass(slots=True)
class Jobs:
    """Files to read, by relative name, in a stable order; and those whose names cannot be
    read, with what the scan found of them (they are never opened). Names alone, not (name,
    stat) pairs: a build's million pairs held 300 MB for as long as it ran."""

    readable: list[str] = field(default_factory=list)
    bad: list[tuple[str, FileStat]] = field(default_factory=list)

    @classmethod
    def of(cls, found: dict[str, FileStat]) -> "Jobs":
        """The files ``found``, by name (a stable document order, whatever the file system's):
        the names sorted alone, not (name, stat) pairs by a key (a million names, shuffled:
        0.87-0.95 s instead of 2.6-2.9)."""
        bad = sorted((rel, st) for rel, st in found.items() if st.bad_name)
        return cls(sorted(rel for rel, st in found.items() if not st.bad_name) if bad else sorted(found), bad)

    def __len__(self) -> int:
        return len(self.readable) + len(self.bad)


class Scanned(NamedTuple):
    """What :meth:`Archive.scan` found: the files to read (new, changed, or due), and the
    files gone since the last refresh."""

    jobs: Jobs
    gone: list[str]


@dataclass(slots=True)
class RefreshResult:
    """What a refresh found: the ids of posts added (none listed by a build's refresh, where
    every post is new; all of them after a damaged index was rebuilt, as some may have come
    meanwhile), changed and removed, and files newly skipped."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed)


@dataclass(frozen=True, slots=True)
class ArchiveStats:
    """Figures for ``archive-bot stats`` and the bot's /stats."""

    posts: int
    first_date: datetime | None
    last_date: datetime | None
    undated: int
    terms: int
    skipped: dict[str, str]
    warnings: dict[str, list[str]]


ProgressCallback = Callable[[int, int], None]


def _noting_damage(method):
    """A read that finds a stored post damaged (the index passed its checks when it was opened,
    so its file changed since: a failing disk, or a hand) still fails, but the archive
    remembers it, and its next :meth:`~Archive.refresh` (the bot's push job runs one every
    minute or so) rebuilds the index from the files instead of failing on the same post."""

    @functools.wraps(method)
    def noting(self: "Archive", *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except DamagedDocument as exc:
            self._damage = str(exc)
            raise

    return noting


class Archive:
    """Search, listing and lookup over the posts of a content directory."""

    def __init__(
        self,
        content_dir: Path,
        index_dir: Path | None,
        tz_name: str,
        tokenizer,
        ranking: Ranking,
        settle_seconds: float,
        workers: int | None,
        site_url: str | None = None,
        permalink: str | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.content_dir = content_dir
        #: "Now", for dates such as 上个月 in queries: settable (tests, benchmarks), one for all.
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(self.tz))
        self.tz_name = tz_name
        self.tz = timezone(tz_name)
        self.tokenizer = tokenizer
        self.ranking = ranking
        self.settle_seconds = settle_seconds
        self.workers = workers
        self._dir = IndexDir(index_dir) if index_dir is not None else None
        self.site, self.posts_dir = find_site(content_dir, site_url, permalink)
        self._scanner = ContentScanner(self.posts_dir)
        self.index = InvertedIndex()
        self.docs = DocStore()
        self.files = FileTable()
        #: What changed since the last full save (an incremental save writes only this).
        self._dirty_files: set[str] = set()
        self._saved_terms = self._saved_ids = 0
        #: A save failed (its writes raised at its commit): what is on disk is older than what
        #: the archive holds as saved whole, so the next save writes everything whole.
        self._save_failed = False
        #: Files found too fresh to read (perhaps still being written): looked at next time.
        self._unsettled: set[str] = set()
        #: Post ids given up during the current refresh (their duplicates may take them).
        self._freed: set[str] = set()
        #: A build is under way (its checkpoints are saved as such: see :meth:`_build`).
        self._building = False
        #: Why a stored post failed its checksum, when a read found one: the next refresh
        #: rebuilds the index (see :func:`_noting_damage`).
        self._damage: str | None = None
        self.last_refresh: datetime | None = None
        self.last_refresh_seconds: float = 0.0

    # ---- opening ----------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        content_dir: str | Path,
        index_dir: str | Path | None = None,
        *,
        tz: str = DEFAULT_TIMEZONE,
        user_dict: str | Path | None = None,
        ranking: Ranking = Ranking(),
        settle_seconds: float = 1.0,
        workers: int | None = None,
        rebuild: bool = False,
        progress: ProgressCallback | None = None,
        access: str = "auto",
        on_wait: Callable[[str], None] | None = None,
        site_url: str | None = None,
        permalink: str | None = None,
        clock: Callable[[], datetime] | None = None,
        sync: bool = True,
    ) -> "Archive":
        """Load the index from ``index_dir`` (or build it), then sync it with the files.

        ``index_dir=None`` keeps the index in memory only. A missing, damaged or outdated index
        is rebuilt (the log says why). Files modified less than ``settle_seconds`` ago are left
        for the next :meth:`refresh`, as they may still be being written.

        One process at a time writes an index directory. With ``access='auto'`` the archive
        writes when no other process does, and otherwise reads the index and keeps its own
        updates in memory; ``'write'`` waits for the writer to finish (calling ``on_wait`` with
        the holder's description first); ``'read'`` never writes. :meth:`close` lets go.

        A Hexo site around ``content_dir`` (see :mod:`retrieval.hexo`) decides which posts are
        published and their page addresses; ``site_url`` and ``permalink`` override its
        ``url`` and ``permalink`` (or, without a site, make one). ``clock`` gives "now" for
        dates such as 上个月 in queries (default: the system clock, in ``tz``). With
        ``sync=False`` a loaded index is served as saved, without looking at the files (a
        full scan: seconds for a million posts) until the caller's first :meth:`refresh`; the
        bot does that in its push job a second after it starts. Raises
        :class:`ArchiveError` when the directories or the site's settings are unusable.
        """
        from .tokenizer import Tokenizer

        if access not in ACCESS:
            raise ValueError(f"access must be one of {ACCESS}")
        content = Path(content_dir)
        if not content.is_dir():
            raise ArchiveError(f"content directory {content} does not exist")
        where = Path(index_dir) if index_dir is not None else None
        if where is not None:
            if where.resolve().is_relative_to(content.resolve()):
                raise ArchiveError(f"the index directory {where} must not be inside the content directory")
            if where.exists() and not where.is_dir():
                raise ArchiveError(f"the index directory {where} is a file, not a directory")
        tokenizer = Tokenizer(Path(user_dict) if user_dict else None)
        try:
            archive = cls(content, where, tz, tokenizer, ranking, settle_seconds, workers, site_url, permalink, clock)
        except SiteError as exc:
            raise ArchiveError(str(exc)) from None
        archive._take_lock(access, on_wait)
        loaded = False
        if archive._dir is not None and not rebuild:
            try:
                archive._load()
                loaded = True
            except CorruptIndex as exc:
                level = logging.INFO if str(exc) == "no index yet" else logging.WARNING
                log.log(level, "building the index in %s: %s", where, exc)
        if not loaded:
            archive._build(progress)
        elif archive._dir is not None and archive._dir.manifest.get("building"):
            log.info("going on with the build that %s was saved in the middle of", where)
            archive._build(progress, resume=True)
        elif sync:
            archive.refresh(progress=progress)
        return archive

    def _take_lock(self, access: str, on_wait: Callable[[str], None] | None) -> None:
        """Become the index's writer, or (``auto`` when another process writes, or ``read``)
        a reader that keeps its changes in memory. ``write`` waits for the lock."""
        if self._dir is None or access == "read":
            return
        try:
            self._dir.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ArchiveError(f"cannot create the index directory {self._dir.path}: {exc.strerror or exc}") from None
        lock = self._dir.lock
        if lock.acquire(wait=False):
            return
        holder = lock.holder() or "another process"
        if access == "auto":
            log.info("the index in %s is being written by %s: opening it read-only", self._dir.path, holder)
            return
        if on_wait is not None:
            on_wait(holder)
        lock.acquire(wait=True)

    @property
    def read_only(self) -> bool:
        """True when this process may not write the persisted index (another one does, or it
        was opened with ``access='read'``, or it has none): changes stay in memory."""
        return self._dir is None or not self._dir.lock.held

    def close(self) -> None:
        """Give up the writer lock (the archive stays usable, read-only)."""
        if self._dir is not None:
            self._dir.lock.release()

    def __enter__(self) -> "Archive":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def ids(self) -> PostIds:
        """Post id -> its live document."""
        return PostIds(self.docs.ids, self.index.is_live, self.index.live_docs)

    def _post_id(self, doc: int) -> str:
        """Document ``doc``'s post id, in the current document store (a compaction replaces it)."""
        return self.docs.ids.string(doc)

    def _new_files(self) -> FileTable:
        return FileTable(post_id=self._post_id)

    @property
    def _spill_dir(self) -> Path | None:
        """Where unsaved stored posts wait past a few megabytes (see :class:`FrameBuffer`),
        and merges put their large output (see ``postings._Filled``): the index directory of
        an archive that writes it; else they stay in memory."""
        return self._dir.path if self._dir is not None and not self.read_only else None

    def _searcher(self) -> Searcher:
        return Searcher(self.index, self.docs, self.tokenizer, self.ranking)

    # ---- queries ----------------------------------------------------------------------------
    def query_tokens(self, query: Query) -> list[str]:
        """The tokens ``query`` is ranked by (none when it has nothing searchable)."""
        return query_tokens(query, self.tokenizer, self.index.vocab)

    def parse(self, text: str) -> Query:
        """Parse a query string, reading it as a question too (dates in the words against
        :attr:`clock`, words that only ask dropped); raises :class:`~retrieval.query.QueryError`."""
        return parse_query(text, self.tz, today=self.clock().astimezone(self.tz).date(), tokenizer=self.tokenizer)

    @_noting_damage
    def search(self, query: str | Query, limit: int = 10, offset: int = 0, summary_chars: int = 120) -> SearchPage:
        """Ranked results for a query string (or parsed query); filters alone list newest first."""
        parsed = self.parse(query) if isinstance(query, str) else query
        return self._searcher().run(parsed, limit, offset, summary_chars)

    @_noting_damage
    def latest(self, limit: int = 10, offset: int = 0, summary_chars: int = 120) -> SearchPage:
        """The newest posts."""
        return self._searcher().run(Query(""), limit, offset, summary_chars)

    @_noting_damage
    def get(self, post_id: str) -> Post | None:
        """A post by id, or None."""
        doc = self.ids.get(post_id)
        return self.docs.post(doc) if doc is not None else None

    def matches(self, query: Query, post: Post) -> bool:
        """Whether ``post`` matches ``query`` (see :class:`~retrieval.matching.PostMatcher`)."""
        return PostMatcher(post, self.tokenizer).matches(query)

    def matcher(self, post: Post) -> PostMatcher:
        """A matcher to test many queries against one post."""
        return PostMatcher(post, self.tokenizer)

    def post_ids(self) -> list[str]:
        """Ids of all posts in the archive."""
        return list(self.ids)

    def __len__(self) -> int:
        return len(self.ids)

    def bm25_scores(self, tokens: list[str]) -> dict[str, float]:
        """Plain BM25Okapi score of every post for the given tokens (no re-rank, no filters)."""
        scores = self.index.score(tokens, titles=False).dense(self.index.n_docs)
        return {pid: float(scores[doc]) for pid, doc in self.ids.items()}

    def doc_tokens(self, post: Post) -> list[str]:
        """The tokens a post is indexed under (title then body)."""
        return self.tokenizer.tokenize(post.title) + self.tokenizer.tokenize(post.searchable_body)

    def stats(self) -> ArchiveStats:
        """Counts, date span, and the files skipped with their reasons."""
        live = self.index.live
        dates = self.docs.dates[live] if live.size else self.docs.dates[:0]
        dated = dates[dates != UNDATED]
        to_dt = lambda s: datetime.fromtimestamp(int(s), self.tz)  # noqa: E731
        return ArchiveStats(
            posts=len(self.ids),
            first_date=to_dt(dated.min()) if dated.size else None,
            last_date=to_dt(dated.max()) if dated.size else None,
            undated=int(dates.size - dated.size),
            terms=int((self.index.df > 0).sum()),
            skipped={rel: e.reason for rel, e in sorted(self.files.noted()) if e.reason},
            warnings={rel: e.warnings for rel, e in sorted(self.files.noted()) if e.warnings},
        )

    # ---- building and syncing ---------------------------------------------------------------
    def _build(self, progress: ProgressCallback | None, resume: bool = False) -> None:
        """Index every file; with ``resume``, go on with a build whose checkpoint was loaded
        (its saves say ``building``, so that it is finished before it is served: served half
        built, the posts still to come would reach subscribers as new)."""
        if not resume:
            self.index, self.docs = InvertedIndex(spill_dir=self._spill_dir), DocStore(FrameStore(spill_dir=self._spill_dir))
            self.files = self._new_files()
            self._saved_terms = self._saved_ids = -1  # nothing of this index is saved yet
        settle, self.settle_seconds = self.settle_seconds, 0.0
        self._building = True
        with _collecting_less():
            try:
                self.refresh(progress=progress, save=False)
            finally:
                self.settle_seconds = settle
                self._building = False
            self._checkpoint()  # saved as finished, and served from disk
        log.info("indexed %d posts (%d files skipped)", len(self.ids), sum(1 for _, e in self.files.noted() if e.reason))

    def scan(self, full: bool = True) -> "Scanned":
        """Look at the content directory (see :meth:`refresh`) and compare it with the file
        table, without changing the index: the files to read and the files gone. A caller can
        do this slow part (a ``stat`` and a lookup per file on a full scan: 12 s for a million
        posts) outside the lock its readers take, then pass the result to :meth:`refresh`.
        It reads only what :meth:`refresh` changes, so one scan or refresh at a time."""
        changes = self._scanner.changes(full)
        files = self.files
        gone = set(files.keys()) - changes.files.keys() if changes.complete else {r for r in changes.gone if r in files}
        return Scanned(self._jobs(changes), sorted(gone))

    def refresh(self, progress: ProgressCallback | None = None, *, save: bool = True, full: bool = True,
                scanned: "Scanned | None" = None) -> RefreshResult:
        """Sync with the content directory: index added and changed files, drop removed ones.

        Unchanged files (same size and mtime, or same content hash) are not read again. With
        ``full=False`` the scan is quick (directories whose time has not changed are not
        re-listed, see :mod:`retrieval.scan`), so an edit in place may wait for the next full
        scan, done at least every ten minutes. Files skipped as duplicates are read again when
        the post that held their id goes, and files skipped until a date when it comes.
        ``scanned``: what :meth:`scan` just found (else the refresh scans itself).

        When a stored post is found damaged (by this refresh, or by a read since the last one),
        the index is rebuilt from the files, and every post counts as added.
        """
        if self._damage is None:
            try:
                return self._refresh(progress, save, full, scanned)
            except DamagedDocument as exc:
                self._damage = str(exc)
        log.warning("rebuilding the index from the files: %s", self._damage)
        self._damage = None
        self._build(progress)
        return RefreshResult(added=self.post_ids())

    def _refresh(self, progress: ProgressCallback | None, save: bool, full: bool,
                 scanned: "Scanned | None") -> RefreshResult:
        started = time.monotonic()
        result = RefreshResult()
        self._freed = set()
        jobs, gone = scanned if scanned is not None else self.scan(full)
        with _collecting_less(len(jobs) >= FEWER_COLLECTIONS_FILES):
            self._analyze(jobs, result, progress)
            for rel in gone:
                self._dirty_files.add(rel)
                entry = self.files.pop(rel)
                if entry.doc is not None and self.index.live[entry.doc]:
                    self._remove(entry.doc)
                    self._freed.add(entry.post_id)  # type: ignore[arg-type]
                    result.removed.append(entry.post_id)  # type: ignore[arg-type]
            waiting = Jobs.of({rel: st for rel, e in self.files.noted() if e.doc is None and e.post_id in self._freed
                               and (st := self._scanner.stat(rel)) is not None})
            if waiting:  # skipped as duplicates of an id that is free now
                self._analyze(waiting, result, None, force=True)
            self.docs.flush()
            merge_due = self.index.commit()
            if save and (jobs or waiting or result):
                if merge_due:  # merged, saved whole and mapped again: the replaced files are let go
                    self._checkpoint()
                else:
                    self._save(full=False)
        self.last_refresh = datetime.now(self.tz)
        self.last_refresh_seconds = time.monotonic() - started
        if result or result.skipped:
            log.info(
                "refresh: %d added, %d changed, %d removed, %d skipped",
                len(result.added), len(result.changed), len(result.removed), len(result.skipped),
            )
        return result

    def _jobs(self, scan: ScanChanges) -> Jobs:
        """The files to read: new or changed (and settled), or skipped until now. A quick scan
        names only the files of directories that changed; files left to settle last time and
        files due to be read again are looked at too. A first build takes every file without
        asking the (empty) file table of each: 1.2 s less before a million files are read."""
        now_ns = time.time_ns()
        settle_ns = int(self.settle_seconds * 1e9)
        due: dict[str, FileStat] = {}
        if not scan.complete:
            again = self._unsettled | {rel for rel, e in self.files.noted() if e.recheck_at is not None}
            due = {rel: st for rel in again if (st := self._scanner.stat(rel, fresh=True)) is not None}
        candidates = {**scan.files, **due} if due else scan.files  # (no copy of a full scan's million entries)
        self._unsettled = set()
        if self.files.is_empty() and not settle_ns:  # (a first build: every file is new, none left to settle)
            return Jobs.of(candidates)
        jobs: dict[str, FileStat] = {}
        for rel, st in candidates.items():
            if self.files.unchanged(rel, st.size, st.mtime_ns, now_ns / 1e9):
                continue
            if settle_ns and now_ns - st.mtime_ns < settle_ns:
                self._unsettled.add(rel)  # possibly still being written: next refresh
                continue
            jobs[rel] = st
        return Jobs.of(jobs)

    def _analyze(self, jobs: Jobs, result: RefreshResult, progress: ProgressCallback | None,
                 force: bool = False) -> None:
        """Read, parse and index ``jobs`` (files whose names cannot be read are skipped unread).
        An archive that writes its index saves a checkpoint after every :data:`CHECKPOINT_FILES`
        files but the last (see :meth:`_checkpoint`)."""
        counter = (lambda n, total=len(jobs): progress(n, total)) if progress else None
        for rel, st in jobs.bad:
            self._apply(Analysis(rel, st.size, st.mtime_ns, "", reason=st.bad_name), result)
            self._dirty_files.add(rel)
        readable = jobs.readable
        checkpoints = self._dir is not None and not self.read_only
        batches = analyze_many(readable, self._scanner.path, self._setup(), self.tokenizer,
                               lambda: self.index.vocab, self.workers, counter,
                               lambda: self.docs.stored.trained_dictionary)
        done = 0
        with closing(batches):  # (the worker processes end here, even on an error)
            for batch in batches:
                left = batch.analyses
                while left:  # (in parts, when a checkpoint falls within the batch)
                    cut = CHECKPOINT_FILES - done % CHECKPOINT_FILES if checkpoints else len(left)
                    self._apply_batch(batch, left[:cut], result, force)
                    done, left = done + len(left[:cut]), left[cut:]
                    if checkpoints and done % CHECKPOINT_FILES == 0 and done < len(readable):
                        self._checkpoint()  # (a full save: the file table so far is written whole)

    def _checkpoint(self) -> None:
        """Merge and save what is indexed so far, and load it again (in the middle of a long
        refresh, at the end of a build, and whenever the delta is merged): the posts are then
        memory-mapped from disk rather than held in memory as the merge made them, nothing keeps
        the replaced files mapped (their disk space would stay taken), and a build that is
        killed keeps them (the next one reads only the rest). An archive that cannot write
        keeps its index in memory."""
        self.docs.flush()
        self.index.commit()
        self._merge()
        self._save(full=True)
        if self._dir is not None and not self.read_only:
            self._load()
            _give_back_freed_memory()

    def _setup(self) -> Setup:
        return Setup(self.tz_name, site=self.site)

    def _apply_batch(self, batch: Batch, analyses: list[Analysis], result: RefreshResult, force: bool) -> None:
        """:meth:`_apply` of each of ``analyses`` (posts of ``batch``), in order; the runs of
        them that are new posts (:meth:`_new_posts`: nearly every post of a build) filed a run at
        once: filing the batches of 50,000 news posts took 17-18 µs a post instead of 22-29 (one
        process, the batches made first, three alternating runs); a million-post build's main
        process took 82.0-88.1 s of CPU instead of 95.9-101.9 (build only, ABBA)."""
        new = self._new_posts(analyses, force)
        start = 0
        for i, a in enumerate(analyses):
            if new[i]:
                continue
            if start < i:
                self._add_new(batch, analyses[start:i], result)
            self._apply(a, result, force, batch.terms_of([a]) if a.span is not None else None)
            start = i + 1
        if start < len(analyses):
            self._add_new(batch, analyses[start:], result)
        self._dirty_files.update(a.rel for a in analyses)

    def _new_posts(self, analyses: list[Analysis], force: bool) -> list[bool]:
        """Per analysis, whether :meth:`_apply` would simply add it: a post to index, from a
        file the table does not know, with an id no document has had (nor an analysis before
        it here). Looked up together: the names' and ids' hashes searched at once."""
        if force:
            return [False] * len(analyses)
        known = self.files.known([a.rel for a in analyses]).tolist()
        ids = [a.filed.id if a.filed is not None else "" for a in analyses]
        had = (self.docs.ids.numbers_of(ids) >= 0).tolist()
        seen: set[str] = set()
        new = []
        for a, post_id, file_known, id_had in zip(analyses, ids, known, had):
            indexable = a.filed is not None and a.span is not None and a.document is not None
            new.append(indexable and not file_known and not id_had and post_id not in seen)
            if a.filed is not None:
                seen.add(post_id)
        return new

    def _add_new(self, batch: Batch, analyses: list[Analysis], result: RefreshResult) -> None:
        """Index new posts (see :meth:`_new_posts`) of ``batch`` that follow each other."""
        doc = self.index.add(batch.terms_of(analyses))
        stored = self.docs.append_many([a.filed for a in analyses], [a.document for a in analyses],  # type: ignore[misc]
                                       [a.frame_key for a in analyses])
        assert doc == stored, "index and document store out of step"
        files = self.files
        for a in analyses:
            for warning in a.warnings:
                log.debug("%s: %s", a.rel, warning)
            files[a.rel] = FileEntry(a.size, a.mtime_ns, a.digest, doc, a.filed.id, None, a.warnings)  # type: ignore[union-attr]
            doc += 1
        if not self._building:  # (everything a build indexes is new: nobody needs the list)
            result.added.extend(a.filed.id for a in analyses)  # type: ignore[union-attr]

    def _apply(self, a: Analysis, result: RefreshResult, force: bool = False, terms: DocTerms | None = None) -> None:
        """File one analysis (``terms``: its post's, when it has one) as what it is: a file
        touched but not changed, a post withdrawn, a file skipped, a duplicate id, a changed
        post, or a new one."""
        old = self.files.get(a.rel)
        if old is not None and old.digest == a.digest and old.reason is None and not force:
            self.files[a.rel] = replace(old, size=a.size, mtime_ns=a.mtime_ns)  # touched, not changed
            return
        if a.unpublished and old is not None and old.doc is not None and self.index.live[old.doc]:
            # Withdrawn (made a draft, or postdated): it must not stay searchable.
            self._remove(old.doc)
            self._freed.add(old.post_id)  # type: ignore[arg-type]
            result.removed.append(old.post_id)  # type: ignore[arg-type]
            old = None
        if a.filed is None or terms is None or a.document is None:
            # Keep the last good version indexed (the file may be half-written); retry when it changes.
            log.log(logging.INFO if a.unpublished else logging.WARNING, "skipped %s: %s", a.rel, a.reason)
            result.skipped[a.rel] = a.reason or "unreadable"
            self.files[a.rel] = FileEntry(a.size, a.mtime_ns, a.digest, old.doc if old else None,
                                          old.post_id if old else None, a.reason, recheck_at=a.recheck_at)
            return
        owner = self.ids.get(a.filed.id)
        if owner is not None and (old is None or old.doc != owner):
            reason = f"duplicate id {a.filed.id!r} (already used by {self._path_of(owner)})"
            log.warning("skipped %s: %s", a.rel, reason)
            result.skipped[a.rel] = reason
            self.files[a.rel] = FileEntry(a.size, a.mtime_ns, a.digest, None, a.filed.id, reason)
            return
        if old is not None and old.doc is not None and self.index.live[old.doc]:
            self._remove(old.doc)
            if old.post_id != a.filed.id:
                self._freed.add(old.post_id)  # type: ignore[arg-type]
            result.changed.append(a.filed.id)
        elif not self._building:  # (everything a build indexes is new: nobody needs the list)
            result.added.append(a.filed.id)
        for warning in a.warnings:
            log.debug("%s: %s", a.rel, warning)
        doc = self.index.add(terms)
        stored = self.docs.append(a.filed, a.document, a.frame_key)
        assert doc == stored, "index and document store out of step"
        self.files[a.rel] = FileEntry(a.size, a.mtime_ns, a.digest, doc, a.filed.id, None, a.warnings)

    def _remove(self, doc: int) -> None:
        """Take a document out of the index (its tokens, read again from the stored post, are
        counted out of the document frequencies)."""
        self.index.remove(doc, self.doc_tokens(self.docs.post(doc)))

    def _path_of(self, doc: int) -> str:
        return self.files.path_of(doc) or "?"

    def _merge(self) -> None:
        dead = int((~self.index.live).sum())
        if (dead and dead >= COMPACT_DEAD_SHARE * self.index.n_docs) or self.docs.stored.needs_dictionary:
            docs, renumber = self.docs.compacted(self.index.live)
            self.index.merge_delta(renumber)
            self.docs = docs
            self.files.renumber(renumber)
        else:
            self.index.merge_delta()

    # ---- persistence ------------------------------------------------------------------------
    def _header(self) -> dict:
        return {
            "format": FORMAT_VERSION,
            "tokenizer": self.tokenizer.fingerprint,
            "timezone": self.tz_name,
            "site": self.site.fingerprint if self.site else None,
            "content": str(self.content_dir.resolve()),
            "bm25": asdict(self.index.params),
        }

    def _save(self, *, full: bool) -> None:
        """Write the index. Both kinds append the new posts' compressed frames to the store.
        A full save (after a merge) writes the main segment, the labels, the file table and
        the post ids anew, and the vocabulary when it has grown; an incremental one writes the
        small delta segment, the liveness of every document, the values the new documents add to
        the append-only per-document arrays (length, date, frame offset) and a journal of new
        terms, post ids, labels and file entries, so adding a post costs little however big
        the archive is."""
        if self.read_only:
            return
        assert self._dir is not None
        full, self._save_failed = full or self._save_failed, True
        with self._dir.begin() as save:
            stored = self.docs.stored
            save.append_blob("store", stored.unsaved_bytes(), fresh=not stored.saved_bytes, framed=True)
            if full:
                save.append_blob("store.dict", stored.dictionary, fresh=True)
                for name, arr in self.index.main.arrays().items():
                    save.array(f"main.{name}", arr)
                if len(self.index.vocab) != self._saved_terms:  # a term's number never changes: write only new ones
                    self._save_strings(save, "terms", self.index.vocab)
                keys = {}
                for kind, (keys[kind], ptr, docs) in self.docs.labels_saved_form().items():
                    save.array(f"labels.{kind}.ptr", ptr)
                    save.array(f"labels.{kind}.docs", docs)
                save.json("labels", keys)
                names, columns, rare = self.files.saved_form()
                self._save_strings(save, "files.names", names)
                for name, arr in columns.items():
                    save.array(f"files.{name}", arr)
                save.json("files.rare", rare)
                self._save_strings(save, "ids", self.docs.ids)
            # What the journal adds to the files saved whole (after a full save, nothing yet);
            # kept as saved only once the save is committed (a write fails at the commit).
            saved_terms, saved_ids = (len(self.index.vocab), len(self.docs.ids)) if full else \
                (self._saved_terms, self._saved_ids)
            dirty = () if full else sorted(self._dirty_files)
            for name, arr in self.index.delta.arrays().items():
                save.array(f"delta.{name}", arr)
            save.grow_array("store.offsets", stored.offsets(), fresh=full)
            save.grow_array("doc_len", self.index.doc_len, fresh=full)
            save.grow_array("dates", self.docs.dates, fresh=full)
            save.array("main.df", self.index.main_df)
            save.array("live", self.index.live)
            save.json("journal", {
                "terms": self.index.vocab.added_since(saved_terms),
                "labels": self.docs.label_log(),
                "files": {rel: self.files[rel].to_json() if rel in self.files else None for rel in dirty},
                "ids": self.docs.ids.added_since(saved_ids),
            })
            save.commit(**self._header(), posts=len(self.ids), building=self._building)
        self._saved_terms, self._saved_ids, self._save_failed = saved_terms, saved_ids, False
        if full:
            self._dirty_files.clear()
        self.docs.mark_saved()

    @staticmethod
    def _save_strings(save, key: str, table: Strings) -> None:
        blob, *arrays = table.saved_form()
        save.append_blob(key, blob, fresh=True)
        for name, arr in zip(STRING_ARRAYS, arrays):
            save.array(f"{key}.{name}", arr)

    def _load_strings(self, key: str, added: object) -> Strings:
        """A saved string table and the strings the journal adds to it (``append``-ed: a
        vocabulary's journal holds only new terms, a post-id table's may repeat ids)."""
        d = self._dir
        assert d is not None
        if not isinstance(added, list) or not all(isinstance(t, str) for t in added):
            raise CorruptIndex(f"the journal's {key} are malformed")
        table = Strings(d.blob(key), *(d.array(f"{key}.{name}") for name in STRING_ARRAYS))
        table.check()
        for text in added:
            table.append(text)
        return table

    def _load(self) -> None:
        """Load the persisted index. A reader racing a writer's commit may find the files of
        the manifest it read already replaced: it reads the manifest again (a few times)
        before it calls the index damaged. Data of the wrong shape or type is damage too."""
        assert self._dir is not None
        for attempt in range(LOAD_ATTEMPTS):
            try:
                self._load_once()
                return
            except CorruptIndex as exc:
                if str(exc) == "no index yet" or attempt == LOAD_ATTEMPTS - 1:
                    raise
                tried = self._dir.manifest.get("generation")
                try:
                    newer = self._dir.read_manifest().get("generation") != tried
                except CorruptIndex:
                    newer = False
                if not newer:
                    raise
                log.info("the index changed while it was being read (%s); reading it again", exc)
                time.sleep(LOAD_RETRY_SECONDS)
            except (TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError) as exc:
                raise CorruptIndex(f"malformed index data ({type(exc).__name__}: {exc})") from None

    def _load_once(self) -> None:
        assert self._dir is not None
        manifest = self._dir.read_manifest()
        expected = self._header()
        for key, value in expected.items():
            if manifest.get(key) != value:
                raise CorruptIndex(f"index was built with {key}={manifest.get(key)!r}, now {value!r}")
        d = self._dir
        d.check_all()
        def segment(prefix: str, load) -> Segment:
            ptr = load(f"{prefix}.ptr", "iu")
            gaps = DocGaps(*(load(f"{prefix}.{name}", kind) for name, kind in (("gaps", "u"), ("gap_start", "iu"),
                                                                              ("gap_width", "u"))))
            gaps.check(ptr)
            return Segment(ptr, gaps, load(f"{prefix}.tfs", "u"), load(f"{prefix}.titles", "u"))

        main = segment("main", d.array)
        delta = segment("delta", lambda key, k: np.array(d.array(key, k)))
        doc_len, live = np.array(d.grown_array("doc_len", np.int32)), np.array(d.array("live", "b"))
        journal = d.json("journal")
        if not isinstance(journal, dict) or not {"terms", "labels", "files", "ids"} <= journal.keys():
            raise CorruptIndex("journal is malformed")
        vocab = self._load_strings("terms", journal["terms"])
        dates = np.array(d.grown_array("dates", np.int64))
        n = doc_len.shape[0]
        if not (live.shape[0] == n == dates.shape[0]) or main.n_terms > len(vocab):
            raise CorruptIndex("index arrays disagree in length")
        stored = FrameStore(d.blob("store", scattered=True), d.grown_array("store.offsets", np.int64), d.blob("store.dict"),
                            self._spill_dir)
        if len(stored) != n:
            raise CorruptIndex("the stored posts disagree with the index in number")
        for seg in (main, delta):
            if seg.tfs.shape[0] != seg.size or seg.titles.shape[0] != (seg.size + 7) // 8:
                raise CorruptIndex("postings disagree in length")
        if delta.size and int(delta.docs.max()) >= n:  # (the main segment's are checked as they are decoded)
            raise CorruptIndex("postings point past the documents")
        keys = d.json("labels")
        if not isinstance(keys, dict) or set(keys) != set(LABEL_KINDS):
            raise CorruptIndex("the label table is malformed")
        labels = {kind: LabelLists(keys[kind], d.array(f"labels.{kind}.ptr"), d.array(f"labels.{kind}.docs"))
                  for kind in LABEL_KINDS}
        self.index = InvertedIndex(vocab, main, delta, doc_len, live, BM25Params(**manifest["bm25"]),
                                   main_df=d.array("main.df"), spill_dir=self._spill_dir)
        self.docs = DocStore(stored, dates, labels, journal["labels"], self._load_strings("ids", journal["ids"]))
        self.docs.mark_saved()
        names = self._load_strings("files.names", [])
        rare = d.json("files.rare")
        if not isinstance(rare, dict) or not isinstance(journal["files"], dict):
            raise CorruptIndex("the file table is malformed")
        self.files = FileTable(names, {name: d.array(f"files.{name}") for name in COLUMNS}, rare, self._post_id)
        for rel, row in journal["files"].items():
            if row is None:
                self.files.forget(rel)
            else:
                self.files[rel] = FileEntry.from_json(row)
        self._saved_terms, self._saved_ids = vocab.base, self.docs.ids.base
        self._dirty_files = set(journal["files"])
        log.info("loaded the index of %d posts from %s", len(self.ids), d.path)
