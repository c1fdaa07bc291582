"""Per-document data beside the postings: post records, dates, ids, and tag/category lists."""

from __future__ import annotations

import json
import unicodedata
from collections import defaultdict
from datetime import datetime, timezone

import numpy as np

from .post import Post

#: Date of an undated post in the ``dates`` array (epoch seconds).
UNDATED = np.iinfo(np.int64).min


def label_key(label: str) -> str:
    """How tags and categories are compared: NFKC, case-folded, trimmed."""
    return unicodedata.normalize("NFKC", label).casefold().strip()


def epoch(when: datetime | None) -> int:
    """A post date as epoch seconds (``UNDATED`` for None)."""
    return UNDATED if when is None else int(when.astimezone(timezone.utc).timestamp())


class DocStore:
    """Post records as JSON lines in one blob (``offsets[i]:offsets[i+1]`` is document ``i``),
    their dates as an array, and tag/category -> documents lists. Append-only; the live mask
    of the index says which documents still count."""

    def __init__(
        self,
        blob: bytes | memoryview = b"",
        offsets: np.ndarray | None = None,
        dates: np.ndarray | None = None,
        labels: dict[str, dict[str, list[int]]] | None = None,
    ) -> None:
        self._blob = blob
        self._blob_len = len(blob)
        self._appended = bytearray()
        self._saved_mark = 0
        self._offsets = list(offsets.tolist()) if offsets is not None else [0]
        self.dates = dates if dates is not None else np.zeros(0, np.int64)
        self._new_dates: list[int] = []
        self.labels: dict[str, defaultdict[str, list[int]]] = {
            kind: defaultdict(list, (labels or {}).get(kind, {})) for kind in ("tags", "categories")
        }

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def append(self, post: Post) -> int:
        """Store a post; returns its document number."""
        doc = len(self)
        self._appended += json.dumps(post.to_record(), ensure_ascii=False).encode() + b"\n"
        self._offsets.append(self._blob_len + len(self._appended))
        self._new_dates.append(epoch(post.date))
        for kind, values in (("tags", post.tags), ("categories", post.categories)):
            for key in dict.fromkeys(label_key(v) for v in values):
                self.labels[kind][key].append(doc)
        return doc

    def flush(self) -> None:
        """Fold appended dates into the ``dates`` array."""
        if self._new_dates:
            self.dates = np.concatenate([self.dates, np.asarray(self._new_dates, np.int64)])
            self._new_dates.clear()

    def post(self, doc: int) -> Post:
        """Document ``doc``'s post."""
        lo, hi = self._offsets[doc], self._offsets[doc + 1]
        if lo >= self._blob_len:
            raw = bytes(self._appended[lo - self._blob_len : hi - self._blob_len])
        else:
            raw = bytes(self._blob[lo:hi])
        return Post.from_record(json.loads(raw))

    def docs_with_label(self, kind: str, label: str) -> np.ndarray:
        """Documents tagged (``kind='tags'``) or filed (``'categories'``) under ``label``."""
        return np.asarray(self.labels[kind].get(label_key(label), ()), np.int64)

    def label_counts(self, kind: str, live: np.ndarray) -> dict[str, int]:
        """Live documents per label."""
        return {k: int(live[np.asarray(v)].sum()) for k, v in self.labels[kind].items() if v}

    # ---- persistence ------------------------------------------------------------------------
    def unsaved_bytes(self) -> bytes:
        """Records appended since the last :meth:`mark_saved`."""
        return bytes(self._appended[self._saved_mark :])

    def mark_saved(self) -> None:
        """Everything appended so far is now on disk (it stays readable from memory)."""
        self._saved_mark = len(self._appended)

    def all_bytes(self) -> bytes:
        """The whole blob, for writing a fresh copy."""
        return bytes(self._blob[: self._blob_len]) + bytes(self._appended)

    def offsets(self) -> np.ndarray:
        return np.asarray(self._offsets, np.int64)

    def labels_json(self) -> dict[str, dict[str, list[int]]]:
        return {kind: {k: v for k, v in table.items() if v} for kind, table in self.labels.items()}

    def compacted(self, live: np.ndarray) -> tuple["DocStore", np.ndarray]:
        """A new store with only the live documents, and the old -> new number map."""
        self.flush()
        renumber = np.full(len(self), -1, np.int64)
        renumber[live] = np.arange(int(live.sum()))
        store = DocStore()
        for doc in np.flatnonzero(live):
            store.append(self.post(int(doc)))
        store.flush()
        return store, renumber
