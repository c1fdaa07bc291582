"""Per-document data beside the postings: post records, dates, ids, and tag/category lists."""

from __future__ import annotations

import json
import unicodedata
from collections import defaultdict
from datetime import datetime, timezone

import numpy as np

from .dates import DateRange
from .phrases import text_of
from .post import Post

#: Date of an undated post in the ``dates`` array (epoch seconds).
UNDATED = np.iinfo(np.int64).min


def label_key(label: str) -> str:
    """How tags and categories are compared: NFKC, case-folded, trimmed."""
    return unicodedata.normalize("NFKC", label).casefold().strip()


def epoch(when: datetime | None) -> int:
    """A post date as epoch seconds (``UNDATED`` for None)."""
    return UNDATED if when is None else int(when.astimezone(timezone.utc).timestamp())


class Records:
    """Append-only byte records: ``offsets[i]:offsets[i+1]`` of the blob is record ``i``.
    The blob read at load (memory-mapped) is never changed; appends stay in memory until
    saved and remain readable from there."""

    def __init__(self, blob: bytes | memoryview = b"", offsets: np.ndarray | None = None) -> None:
        self._blob = blob
        self._blob_len = len(blob)
        self._appended = bytearray()
        self._saved_mark = 0
        self._offsets = list(offsets.tolist()) if offsets is not None else [0]

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def append(self, record: bytes) -> None:
        self._appended += record
        self._offsets.append(self._blob_len + len(self._appended))

    def __getitem__(self, i: int) -> bytes:
        lo, hi = self._offsets[i], self._offsets[i + 1]
        if lo >= self._blob_len:
            return bytes(self._appended[lo - self._blob_len : hi - self._blob_len])
        return bytes(self._blob[lo:hi])

    def unsaved_bytes(self) -> bytes:
        return bytes(self._appended[self._saved_mark :])

    def mark_saved(self) -> None:
        self._saved_mark = len(self._appended)

    def all_bytes(self) -> bytes:
        return bytes(self._blob[: self._blob_len]) + bytes(self._appended)

    def offsets(self) -> np.ndarray:
        return np.asarray(self._offsets, np.int64)


class DocStore:
    """Per document: the post record (JSON), its compacted text (for phrase tests, UTF-8), its
    date (an array), and tag/category -> documents lists. Append-only; the live mask of the
    index says which documents still count."""

    def __init__(
        self,
        records: Records | None = None,
        texts: Records | None = None,
        dates: np.ndarray | None = None,
        labels: dict[str, dict[str, list[int]]] | None = None,
        label_log: list[list] | None = None,
    ) -> None:
        self.records = records or Records()
        self.texts = texts or Records()
        if len(self.records) != len(self.texts):
            raise ValueError("post records and texts disagree in number")
        self.dates = dates if dates is not None else np.zeros(0, np.int64)
        self._new_dates: list[int] = []
        self.labels: dict[str, defaultdict[str, list[int]]] = {
            kind: defaultdict(list, (labels or {}).get(kind, {})) for kind in ("tags", "categories")
        }
        #: (kind, key, doc) added since the labels were last written whole.
        self._label_log: list[list] = []
        for kind, key, doc in label_log or ():
            self._add_label(kind, key, doc)

    def __len__(self) -> int:
        return len(self.records)

    def _add_label(self, kind: str, key: str, doc: int) -> None:
        self.labels[kind][key].append(doc)
        self._label_log.append([kind, key, doc])

    def append(self, post: Post, text: bytes | None = None) -> int:
        """Store a post (``text``: its :func:`~retrieval.phrases.text_of`, UTF-8, if already
        computed); returns its document number."""
        doc = len(self)
        self.records.append(json.dumps(post.to_record(), ensure_ascii=False).encode() + b"\n")
        self.texts.append(text if text is not None else text_of(post.title, post.searchable_body).encode())
        self._new_dates.append(epoch(post.date))
        for kind, values in (("tags", post.tags), ("categories", post.categories)):
            for key in dict.fromkeys(label_key(v) for v in values):
                self._add_label(kind, key, doc)
        return doc

    def flush(self) -> None:
        """Fold appended dates into the ``dates`` array."""
        if self._new_dates:
            self.dates = np.concatenate([self.dates, np.asarray(self._new_dates, np.int64)])
            self._new_dates.clear()

    def post(self, doc: int) -> Post:
        """Document ``doc``'s post."""
        return Post.from_record(json.loads(self.records[doc]))

    def text(self, doc: int) -> bytes:
        """Document ``doc``'s compacted title and body, UTF-8 (see :func:`~retrieval.phrases.text_of`)."""
        return self.texts[doc]

    def in_range(self, dates: DateRange) -> np.ndarray:
        """Per document: dated, and within ``dates``."""
        keep = self.dates != UNDATED
        if dates.start is not None:
            keep &= self.dates >= epoch(dates.start)
        if dates.end is not None:
            keep &= self.dates < epoch(dates.end)
        return keep

    def docs_with_label(self, kind: str, label: str) -> np.ndarray:
        """Documents tagged (``kind='tags'``) or filed (``'categories'``) under ``label``."""
        return np.asarray(self.labels[kind].get(label_key(label), ()), np.int64)

    # ---- persistence ------------------------------------------------------------------------
    def mark_saved(self) -> None:
        """Everything appended so far is now on disk."""
        self.records.mark_saved()
        self.texts.mark_saved()

    def labels_json(self) -> dict[str, dict[str, list[int]]]:
        """All labels, for a full save (after which the label log starts empty)."""
        self._label_log = []
        return {kind: {k: v for k, v in table.items() if v} for kind, table in self.labels.items()}

    def label_log(self) -> list[list]:
        """Labels added since the last :meth:`labels_json`, for an incremental save."""
        return list(self._label_log)

    def compacted(self, live: np.ndarray) -> tuple["DocStore", np.ndarray]:
        """A new store with only the live documents, and the old -> new number map."""
        self.flush()
        renumber = np.full(len(self), -1, np.int64)
        renumber[live] = np.arange(int(live.sum()))
        store = DocStore()
        for doc in np.flatnonzero(live).tolist():
            store.append(self.post(doc), self.text(doc))
        store.flush()
        return store, renumber
