"""Per-document data beside the postings: post records and texts, dates, and tag/category lists."""

from __future__ import annotations

import functools
import unicodedata
from array import array
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import NamedTuple

import numpy as np
import orjson

from .dates import DateRange
from .phrases import text_of
from .post import Post
from .stored import FrameStore
from .strings import Lookup, Strings

#: Date of an undated post in the ``dates`` array (epoch seconds).
UNDATED = np.iinfo(np.int64).min
#: The kinds of label a post has.
LABEL_KINDS = ("tags", "categories")
#: Labels whose keys :func:`label_key` remembers, the most recently used (in each worker: in
#: 20,000 news posts the ten most used labels are half of all, the thousand most used 71%,
#: and 65,536 of them took each worker 12 MB, and the labels they kept alive more).
LABEL_KEYS_CACHED = 4096


@functools.lru_cache(maxsize=LABEL_KEYS_CACHED)
def label_key(label: str) -> str:
    """How tags and categories are compared: NFKC, case-folded, trimmed. Remembered: a build
    meets the same few labels in post after post (51 ns a label instead of 175)."""
    return unicodedata.normalize("NFKC", label).casefold().strip()


def post_record(post: Post) -> bytes:
    """A post as the store keeps it: one line of UTF-8 JSON (JSON escapes newlines). orjson,
    not json: a search decodes ten of these per page, in 3.6 µs each instead of 7.2, and a build
    encodes every post, in 6 µs instead of 10."""
    return orjson.dumps(post.to_record())


def document(post: Post) -> bytes:
    """A post as the store keeps it: its :func:`post_record`, a newline and its compacted
    text (:func:`~retrieval.phrases.text_of`, UTF-8), which :meth:`DocStore.posts` and
    :meth:`DocStore.texts` take apart again."""
    return post_record(post) + b"\n" + text_of(post.title, post.searchable_body).encode()


def epoch(when: datetime | None) -> int:
    """A post date as epoch seconds (``UNDATED`` for None)."""
    return UNDATED if when is None else int(when.astimezone(timezone.utc).timestamp())


class Filed(NamedTuple):
    """What the store files a post under beside its record: its id, its date (epoch seconds,
    ``UNDATED`` for none) and its labels' keys (:func:`label_key`, each once, in order). It is
    all a build's main process needs of a post, so a worker sends this rather than the post,
    whose text the record and the compacted text already carry (pickled and unpickled, the
    whole post cost the two processes 14 µs of CPU a post; this costs 3.4 µs). The worker
    makes the keys: in the main process they took 10 µs a post of news (five labels)."""

    id: str
    date: int
    tags: tuple[str, ...]
    categories: tuple[str, ...]

    @classmethod
    def of(cls, post: Post) -> "Filed":
        return cls(post.id, epoch(post.date), _keys(post.tags), _keys(post.categories))


def _keys(labels: tuple[str, ...]) -> tuple[str, ...]:
    """Each label's :func:`label_key`, once, in order."""
    return tuple(dict.fromkeys(map(label_key, labels)))


class LabelLists:
    """Label -> documents, for one kind (tags or categories): the saved lists in compressed
    sparse rows (``docs[ptr[r]:ptr[r+1]]`` for the label in row ``r``, memory-mapped) and the
    documents labelled since, in a dict."""

    def __init__(self, keys: list[str] | None = None, ptr: np.ndarray | None = None,
                 docs: np.ndarray | None = None) -> None:
        self._rows = {key: row for row, key in enumerate(keys or ())}
        self._ptr = ptr if ptr is not None else np.zeros(1, np.int64)
        self._docs = docs if docs is not None else np.zeros(0, np.int32)
        if self._ptr.shape[0] != len(self._rows) + 1 or int(self._ptr[-1]) != self._docs.shape[0] \
                or bool((np.diff(self._ptr) < 0).any()):
            raise ValueError("label lists disagree with their rows")
        self._added: defaultdict[str, array] = defaultdict(lambda: array("i"))  # 4 bytes a document
        self._written: dict[str, int] = {}  # per key, how many of its added documents a full save wrote

    def add(self, key: str, doc: int) -> None:
        self._added[key].append(doc)

    def add_all(self, keys: tuple[str, ...], doc: int) -> None:
        """:meth:`add` of each key (a post's labels of one kind, at once)."""
        added = self._added
        for key in keys:
            added[key].append(doc)

    def unwritten(self) -> Iterator[tuple[str, int]]:
        """(label, document) added since the last :meth:`mark_written`, for a journal."""
        for key, docs in self._added.items():
            for doc in docs[self._written.get(key, 0) :]:
                yield key, doc

    def mark_written(self) -> None:
        """Every list so far is on disk whole."""
        self._written = {key: len(docs) for key, docs in self._added.items()}

    def docs(self, key: str) -> np.ndarray:
        """The documents labelled ``key``, ascending."""
        row = self._rows.get(key)
        saved = self._docs[int(self._ptr[row]) : int(self._ptr[row + 1])] if row is not None else self._docs[:0]
        added = self._added.get(key)
        return np.concatenate([saved, np.frombuffer(added, np.int32).astype(saved.dtype)]) if added else saved

    def renumbered(self, renumber: np.ndarray) -> "LabelLists":
        """The same lists with documents renumbered (old -> new; -1: dropped)."""
        keys, ptr, docs = self.saved_form()
        new = renumber[docs]
        keep = new >= 0
        kept = np.zeros(keep.shape[0] + 1, np.int64)
        np.cumsum(keep, out=kept[1:])
        return LabelLists(keys, kept[ptr], new[keep].astype(np.int32))

    def saved_form(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Every label's list as (keys, ptr, docs), for a full save: the saved labels in their
        rows, then the new ones; each list :meth:`docs` of its key. The saved lists are moved
        to their new places at once and the added ones joined, not each list made alone (a
        checkpoint of a million-post build made hundreds of thousands of them, 3 µs each)."""
        saved = len(self._rows)
        new_keys = [key for key in self._added if key not in self._rows]
        keys = [*self._rows, *new_keys]
        row_of = {**self._rows, **{key: saved + i for i, key in enumerate(new_keys)}}
        added = list(self._added.items())
        rows = np.fromiter((row_of[key] for key, _ in added), np.int64, len(added))
        lengths = np.fromiter((len(docs) for _, docs in added), np.int64, len(added))
        counts = np.zeros(len(keys), np.int64)
        counts[:saved] = np.diff(self._ptr)
        old_counts = counts.copy()
        counts[rows] += lengths
        ptr = np.zeros(len(keys) + 1, np.int64)
        np.cumsum(counts, out=ptr[1:])
        docs = np.empty(int(ptr[-1]), np.int32)
        docs[_spread(ptr[:saved], old_counts[:saved])] = self._docs
        joined = np.frombuffer(b"".join([list_.tobytes() for _, list_ in added]), np.int32)
        docs[_spread(ptr[rows] + old_counts[rows], lengths)] = joined
        return keys, ptr, docs


def _spread(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The positions ``starts[i] + j`` for ``j < lengths[i]``, in order."""
    firsts = np.zeros(lengths.shape[0], np.int64)
    np.cumsum(lengths[:-1], out=firsts[1:])
    return np.repeat(starts - firsts, lengths) + np.arange(int(lengths.sum()), dtype=np.int64)


class DocStore:
    """Per document: the post record (JSON) and its compacted text (for phrase tests, UTF-8),
    stored together compressed (see :mod:`retrieval.stored`); its date (an array); and
    tag/category -> documents lists. Append-only; the live mask of the index says which
    documents still count."""

    def __init__(
        self,
        stored: FrameStore | None = None,
        dates: np.ndarray | None = None,
        labels: dict[str, LabelLists] | None = None,
        label_log: list[list] | None = None,
        ids: Strings | None = None,
    ) -> None:
        self.stored = stored if stored is not None else FrameStore()
        #: Each document's post id (repeated when an edited post got a new document).
        self.ids = ids if ids is not None else Strings()
        if len(self.ids) != len(self.stored):
            raise ValueError("post ids and stored posts disagree in number")
        self.dates = dates if dates is not None else np.zeros(0, np.int64)
        self._new_dates = array("q")
        self.labels = {kind: (labels or {}).get(kind) or LabelLists() for kind in LABEL_KINDS}
        for kind, key, doc in label_log or ():  # added since the labels were last written whole
            self.labels[kind].add(key, doc)

    def __len__(self) -> int:
        return len(self.stored)

    def append(self, filed: Filed, data: bytes, key: bytes | None = None) -> int:
        """Store a post: ``data`` is its :func:`document`, or (with the ``key`` of the store's
        dictionary) the frame a worker made of it; returns its document number."""
        return self.append_many([filed], [data], [key])

    def append_many(self, filed: list[Filed], data: list[bytes], keys: list[bytes | None]) -> int:
        """:meth:`append` of each post (with its data and key): the frames of one dictionary
        (a worker's batch) go to the store in one write; returns the first one's number."""
        first = len(self)
        key = keys[0] if keys else None
        if key is not None and all(other == key for other in keys):
            self.stored.append_frames(data, key)
        else:
            for one, its_key in zip(data, keys):
                if its_key is None:
                    self.stored.append(one)
                else:
                    self.stored.append_frame(one, its_key)
        tags, categories = self.labels["tags"], self.labels["categories"]
        for doc, one in enumerate(filed, first):
            self.ids.append(one.id)
            self._new_dates.append(one.date)
            tags.add_all(one.tags, doc)
            categories.add_all(one.categories, doc)
        return first

    def flush(self) -> None:
        """Fold appended dates into the ``dates`` array."""
        if self._new_dates:
            self.dates = np.concatenate([self.dates, np.frombuffer(self._new_dates, np.int64)])
            self._new_dates = array("q")

    def post(self, doc: int) -> Post:
        """Document ``doc``'s post."""
        return next(self.posts([doc]))

    def posts(self, docs: list[int]) -> Iterator[Post]:
        """The posts of ``docs``, in order, read in one pass (a page's: their frames are asked
        of the disk together, see :meth:`~retrieval.stored.FrameStore.many`)."""
        for data in self.stored.many(docs):
            yield Post.from_record(orjson.loads(data.partition(b"\n")[0]))

    def texts(self, docs: list[int]) -> Iterator[bytes]:
        """The compacted title and body (UTF-8, see :func:`~retrieval.phrases.text_of`) of each
        of ``docs``, in order, decoded in one pass."""
        for data in self.stored.many(docs):
            yield data.partition(b"\n")[2]

    def in_range(self, dates: DateRange, docs: np.ndarray | None = None) -> np.ndarray:
        """Per document (of ``docs``, or of all): dated, and within ``dates``."""
        when = self.dates if docs is None else self.dates[docs]
        keep = when != UNDATED
        if dates.start is not None:
            keep &= when >= epoch(dates.start)
        if dates.end is not None:
            keep &= when < epoch(dates.end)
        return keep

    def docs_with_label(self, kind: str, label: str) -> np.ndarray:
        """Documents tagged (``kind='tags'``) or filed (``'categories'``) under ``label``."""
        return self.labels[kind].docs(label_key(label)).astype(np.int64)

    # ---- persistence ------------------------------------------------------------------------
    def mark_saved(self) -> None:
        """Everything appended so far is now on disk."""
        self.stored.mark_saved()

    def labels_saved_form(self) -> dict[str, tuple[list[str], np.ndarray, np.ndarray]]:
        """All labels, for a full save (after which the label log starts empty)."""
        for lists in self.labels.values():
            lists.mark_written()
        return {kind: lists.saved_form() for kind, lists in self.labels.items()}

    def label_log(self) -> list[list]:
        """Labels added since the last :meth:`labels_saved_form`, for an incremental save."""
        return [[kind, key, doc] for kind, lists in self.labels.items() for key, doc in lists.unwritten()]

    def compacted(self, live: np.ndarray) -> tuple["DocStore", np.ndarray]:
        """A new store with only the live documents, and the old -> new number map."""
        self.flush()
        renumber = np.full(len(self), -1, np.int64)
        renumber[live] = np.arange(int(live.sum()))
        kept = np.flatnonzero(live)
        labels = {kind: lists.renumbered(renumber) for kind, lists in self.labels.items()}
        ids = Strings(*self.ids.saved_form(np.asarray(live, np.bool_)))
        return DocStore(self.stored.subset(kept.tolist()), self.dates[kept].copy(), labels, ids=ids), renumber


class PostIds(Lookup):
    """Post id -> its live document: the store's per-document ids, filtered by liveness (so a
    document marked dead, or replaced by an edit, drops out with no bookkeeping)."""

    def __init__(self, ids: Strings, is_live: Callable[[int], bool], live_docs: Callable[[], np.ndarray]) -> None:
        self._ids, self._is_live, self._live_docs = ids, is_live, live_docs

    def get(self, post_id: str) -> int | None:
        return next((doc for doc in self._ids.numbers(post_id) if self._is_live(doc)), None)

    def __iter__(self) -> Iterator[str]:
        return (self._ids.string(doc) for doc in self._live_docs().tolist())

    def items(self) -> Iterator[tuple[str, int]]:
        return ((self._ids.string(doc), doc) for doc in self._live_docs().tolist())

    def __len__(self) -> int:
        return len(self._live_docs())
