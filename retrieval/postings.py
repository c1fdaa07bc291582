"""Postings in compressed-sparse-row form: per term, its documents, frequencies and title flags."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DOC_DTYPE = np.int32
TF_DTYPE = np.int32


@dataclass(slots=True)
class Segment:
    """Rows ``ptr[t]:ptr[t+1]`` of ``docs``/``tfs``/``in_title`` are term ``t``'s postings,
    documents ascending. Terms at or past ``n_terms`` have none here."""

    ptr: np.ndarray
    docs: np.ndarray
    tfs: np.ndarray
    in_title: np.ndarray

    @classmethod
    def empty(cls) -> "Segment":
        return cls(
            np.zeros(1, np.int64), np.zeros(0, DOC_DTYPE), np.zeros(0, TF_DTYPE), np.zeros(0, np.bool_)
        )

    @classmethod
    def from_postings(
        cls, terms: np.ndarray, docs: np.ndarray, tfs: np.ndarray, in_title: np.ndarray, n_terms: int
    ) -> "Segment":
        """Build from parallel arrays of postings; they must be in ascending document order."""
        order = np.argsort(terms, kind="stable")
        counts = np.bincount(terms, minlength=n_terms) if terms.size else np.zeros(n_terms, np.int64)
        ptr = np.zeros(n_terms + 1, np.int64)
        np.cumsum(counts, out=ptr[1:])
        return cls(
            ptr,
            docs[order].astype(DOC_DTYPE, copy=False),
            tfs[order].astype(TF_DTYPE, copy=False),
            in_title[order].astype(np.bool_, copy=False),
        )

    @property
    def n_terms(self) -> int:
        return self.ptr.shape[0] - 1

    @property
    def size(self) -> int:
        return int(self.docs.shape[0])

    def postings(self, term: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(docs, tfs, in_title) of one term; empty arrays when it has none here."""
        if term >= self.n_terms:
            return self.docs[:0], self.tfs[:0], self.in_title[:0]
        lo, hi = int(self.ptr[term]), int(self.ptr[term + 1])
        return self.docs[lo:hi], self.tfs[lo:hi], self.in_title[lo:hi]

    def terms(self) -> np.ndarray:
        """The term id of every posting (the expansion of ``ptr``)."""
        return np.repeat(np.arange(self.n_terms, dtype=np.int64), np.diff(self.ptr))

    def doc_frequencies(self, n_terms: int, live: np.ndarray) -> np.ndarray:
        """Per term, how many live documents it occurs in."""
        df = np.zeros(n_terms, np.int64)
        if self.size == 0:
            return df
        counts = np.diff(self.ptr)
        df[: self.n_terms] = counts
        dead = ~live[self.docs]
        if dead.any():
            df -= np.bincount(self.terms()[dead], minlength=n_terms)
        return df

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays to persist, by name."""
        return {"ptr": self.ptr, "docs": self.docs, "tfs": self.tfs, "in_title": self.in_title}


def merge(segments: list[Segment], live: np.ndarray, n_terms: int, renumber: np.ndarray | None = None) -> Segment:
    """One segment holding the live postings of ``segments`` (whose documents must not overlap
    and must ascend from one segment to the next); ``renumber`` maps old document numbers to new."""
    parts = [(s.terms(), s.docs, s.tfs, s.in_title) for s in segments if s.size]
    if not parts:
        empty = Segment.empty()
        empty.ptr = np.zeros(n_terms + 1, np.int64)
        return empty
    terms, docs, tfs, flags = (np.concatenate(col) for col in zip(*parts))
    keep = live[docs]
    terms, docs, tfs, flags = terms[keep], docs[keep], tfs[keep], flags[keep]
    if renumber is not None:
        docs = renumber[docs]
    # Stable sort by term keeps documents ascending within each term when segments ascend.
    return Segment.from_postings(terms, docs, tfs, flags, n_terms)
