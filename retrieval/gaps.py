"""Documents of each term as gaps, in the fewest bytes the term's largest gap needs.

A term's documents ascend, so it is stored as the first document and then the differences.
Frequent terms, which hold most postings, have small gaps (four in five fit a byte on the news
corpus) while a rare term's few gaps are large: choosing one width per term (1, 2 or 4 bytes)
keeps the postings at about 1.7 bytes each instead of 4, and one term still decodes alone with
a ``cumsum``, which is what a query needs. Whole segments decode (for merges) a width at a time.
"""

from __future__ import annotations

import numpy as np

from .native import native

#: Widths in bytes and the unsigned type of each.
WIDTHS = {1: np.uint8, 2: np.uint16, 4: np.uint32}


class DocGaps:
    """Term ``t``'s gaps are bytes ``start[t]:start[t+1]`` of ``data``, ``width[t]`` each."""

    def __init__(self, data: np.ndarray, start: np.ndarray, width: np.ndarray) -> None:
        self.data, self.start, self.width = data, start, width

    @classmethod
    def empty(cls, n_terms: int = 0) -> "DocGaps":
        return cls(np.zeros(0, np.uint8), np.zeros(n_terms + 1, np.int64), np.ones(n_terms, np.uint8))

    @classmethod
    def encode(cls, docs: np.ndarray, ptr: np.ndarray) -> "DocGaps":
        """Gaps of ``docs`` (each term's rows ``ptr[t]:ptr[t+1]`` ascending). In C when the
        extension is built: a build encodes every posting twice or more, in its runs and its
        merges, and NumPy's passes over temporary arrays took 8% of its main process under a
        profiler at 200,000 posts. :meth:`encode_arrays` is the reference."""
        if native is None:
            return cls.encode_arrays(docs, ptr)
        docs, ptr = np.ascontiguousarray(docs, np.int32), np.ascontiguousarray(ptr, np.int64)
        width = np.empty(ptr.shape[0] - 1, np.uint8)
        start = np.empty(ptr.shape[0], np.int64)
        native.gap_widths(docs, ptr, width, start)
        data = np.empty(int(start[-1]), np.uint8)
        native.write_gaps(docs, ptr, start, width, data)
        return cls(data, start, width)

    @classmethod
    def encode_arrays(cls, docs: np.ndarray, ptr: np.ndarray) -> "DocGaps":
        """:meth:`encode` in NumPy (the reference)."""
        counts = np.diff(ptr)
        gaps = docs.astype(np.int64)
        gaps[1:] -= gaps[:-1].copy()
        firsts = ptr[:-1][counts > 0]
        gaps[firsts] = docs[firsts]  # each term starts from its first document
        top = np.zeros(counts.shape[0], np.int64)
        if firsts.size:
            top[counts > 0] = np.maximum.reduceat(gaps, firsts)
        width = np.where(top < 1 << 8, 1, np.where(top < 1 << 16, 2, 4)).astype(np.uint8)
        start = np.zeros(counts.shape[0] + 1, np.int64)
        np.cumsum(counts * width, out=start[1:])
        data = np.zeros(int(start[-1]), np.uint8)
        per_posting = np.repeat(width, counts)
        first_byte = np.repeat(start[:-1] - ptr[:-1] * width, counts) + np.arange(gaps.shape[0]) * per_posting
        for size, kind in WIDTHS.items():
            chosen = per_posting == size
            if chosen.any():
                raw = gaps[chosen].astype(kind).view(np.uint8).reshape(-1, size)
                data[first_byte[chosen][:, None] + np.arange(size)] = raw
        return cls(data, start, width)

    def sliced(self, a: int, b: int) -> "DocGaps":
        """Terms ``a:b`` alone (term ``a`` becomes term 0)."""
        lo, hi = int(self.start[a]), int(self.start[b])
        return DocGaps(self.data[lo:hi], self.start[a : b + 1] - lo, self.width[a:b])

    def term(self, term: int) -> np.ndarray:
        """Term ``term``'s documents (ascending; int64, numpy's index type: gathers and
        scatters with int32 indices convert them first, and take twice as long)."""
        lo, hi = int(self.start[term]), int(self.start[term + 1])
        kind = WIDTHS[int(self.width[term])]
        return np.cumsum(np.frombuffer(self.data[lo:hi], kind), dtype=np.int64)

    def stored(self, term: int) -> tuple[np.ndarray, int]:
        """Term ``term``'s gaps as stored (bytes) and their width, for the C scorer."""
        return self.data[int(self.start[term]) : int(self.start[term + 1])], int(self.width[term])

    def decode(self, ptr: np.ndarray) -> np.ndarray:
        """Every term's documents, in term order (int32): in C when the extension is built (a
        merge decodes every posting of its inputs), else :meth:`decode_arrays`."""
        if native is None:
            return self.decode_arrays(ptr)
        docs = np.empty(int(ptr[-1]), np.int32)
        native.decode_gaps(self.data, self.start, self.width, np.ascontiguousarray(ptr, np.int64), docs)
        return docs

    def decode_arrays(self, ptr: np.ndarray) -> np.ndarray:
        """:meth:`decode` in NumPy (the reference)."""
        counts = np.diff(ptr)
        per_posting = np.repeat(self.width, counts)
        per_byte = np.repeat(self.width, counts * self.width)
        gaps = np.zeros(int(ptr[-1]), np.int64)
        for size, kind in WIDTHS.items():
            chosen = per_posting == size
            if chosen.any():
                gaps[chosen] = np.frombuffer(self.data[per_byte == size].tobytes(), kind)
        total = np.cumsum(gaps)
        before = np.zeros(counts.shape[0], np.int64)  # the running total before each term
        nonempty = counts > 0
        starts = ptr[:-1][nonempty]
        before[nonempty] = np.where(starts > 0, total[np.maximum(starts - 1, 0)], 0)
        return (total - np.repeat(before, counts)).astype(np.int32)

    def check(self, ptr: np.ndarray) -> None:
        """ValueError unless the layout agrees with the postings' row pointers."""
        counts = np.diff(ptr)
        if not (self.width.shape[0] == counts.shape[0] and self.start.shape[0] == counts.shape[0] + 1
                and bool(np.isin(self.width, list(WIDTHS)).all()) and self.start[0] == 0
                and bool((np.diff(self.start) == counts * self.width).all()) and int(self.start[-1]) == self.data.shape[0]):
            raise ValueError("document gaps disagree with the postings")

    def arrays(self) -> dict[str, np.ndarray]:
        return {"gaps": self.data, "gap_start": self.start, "gap_width": self.width}
