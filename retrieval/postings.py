"""Postings in compressed-sparse-row form: per term, its documents, frequencies and title flags.

A posting is a document number (stored as a gap from the term's previous one, see
:mod:`retrieval.gaps`), its term frequency in the smallest unsigned type that holds the largest
(uint8 in news text, whose largest is a few hundred at most) and one bit saying whether the
term is in the title: under 3 bytes a posting where three arrays took 9.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .gaps import DocGaps
from .native import native

DOC_DTYPE = np.int32
#: Postings a merge decodes at a time (about 20 bytes each while decoded).
MERGE_CHUNK = 2_000_000
#: A merge output array at least this large is a mapped temporary file when the merge is
#: given a directory for one (see :class:`_Filled`).
FILE_BACKED_BYTES = 64 * 1024 * 1024


def narrow(tfs: np.ndarray) -> np.ndarray:
    """Term frequencies in the smallest unsigned type that holds them."""
    top = int(tfs.max()) if tfs.size else 0
    return tfs.astype(next(t for t in (np.uint8, np.uint16, np.uint32) if top <= np.iinfo(t).max), copy=False)


def bits(flags: np.ndarray) -> np.ndarray:
    """Booleans packed eight to a byte (bit ``i % 8`` of byte ``i // 8``)."""
    return np.packbits(flags, bitorder="little")


def unbits(packed: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Booleans ``lo:hi`` of a :func:`bits` array."""
    start = lo & 7
    return np.unpackbits(packed[lo >> 3 : (hi + 7) >> 3], bitorder="little")[start : start + hi - lo].astype(np.bool_)


def grouped_by_term(terms: np.ndarray, ptr: np.ndarray, *columns: np.ndarray) -> list[np.ndarray]:
    """``columns`` (arrays parallel to ``terms``) in the stable order that groups postings by
    term (``ptr``: where each term's postings begin, the cumulative counts of ``terms``). A
    counting sort in C (:mod:`retrieval.native`) when built, which puts each posting where it
    goes: 0.045-0.055 s for a run of four million postings, which a build makes every 16,000
    posts or so. The reference, each column taken in the order ``np.argsort(kind="stable")``
    gives, takes 0.3 s to sort them and 0.06-0.10 s more to gather three columns."""
    if native is None:
        order = np.argsort(terms, kind="stable")
        return [column[order] for column in columns]
    grouped = [np.empty_like(column) for column in columns]
    native.group_by_term(np.ascontiguousarray(terms, np.int32), ptr,
                         tuple(np.ascontiguousarray(column) for column in columns), tuple(grouped))
    return grouped


@dataclass(slots=True)
class Segment:
    """Rows ``ptr[t]:ptr[t+1]`` of ``tfs`` (and bits of ``titles``) are term ``t``'s postings,
    whose documents (ascending) ``gaps`` holds. Terms at or past ``n_terms`` have none here."""

    ptr: np.ndarray
    gaps: DocGaps
    tfs: np.ndarray
    titles: np.ndarray

    @classmethod
    def empty(cls, n_terms: int = 0) -> "Segment":
        return cls(np.zeros(n_terms + 1, np.int64), DocGaps.empty(n_terms), np.zeros(0, np.uint8), np.zeros(0, np.uint8))

    @classmethod
    def of(cls, ptr: np.ndarray, docs: np.ndarray, tfs: np.ndarray, flags: np.ndarray) -> "Segment":
        """A segment of decoded postings (each term's documents ascending)."""
        return cls(ptr, DocGaps.encode(docs, ptr), narrow(tfs), bits(flags))

    @property
    def docs(self) -> np.ndarray:
        """Every posting's document, decoded (for merges: a query decodes only its terms)."""
        return self.gaps.decode(self.ptr)

    @classmethod
    def from_postings(cls, terms: np.ndarray, docs: np.ndarray, tfs: np.ndarray, in_title: np.ndarray,
                      n_terms: int) -> "Segment":
        """Build from parallel arrays of postings; they must be in ascending document order."""
        counts = np.bincount(terms, minlength=n_terms) if terms.size else np.zeros(n_terms, np.int64)
        ptr = np.zeros(n_terms + 1, np.int64)
        np.cumsum(counts, out=ptr[1:])
        return cls.of(ptr, *grouped_by_term(terms, ptr, docs, tfs, in_title))

    @property
    def n_terms(self) -> int:
        return self.ptr.shape[0] - 1

    @property
    def size(self) -> int:
        return int(self.ptr[-1])

    def postings(self, term: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(docs, tfs, in_title) of one term; empty arrays when it has none here."""
        lo, hi = (int(self.ptr[term]), int(self.ptr[term + 1])) if term < self.n_terms else (0, 0)
        if lo == hi:
            return np.zeros(0, np.int64), self.tfs[:0], np.zeros(0, np.bool_)
        return self.gaps.term(term), self.tfs[lo:hi], unbits(self.titles, lo, hi)

    def stored(self, term: int) -> tuple[np.ndarray, int, np.ndarray, np.ndarray, int] | None:
        """One term's postings as stored, for the C scorer (None when it has none here): its
        gap bytes and their width, its frequencies, and the title bits with its first one's
        number."""
        lo, hi = (int(self.ptr[term]), int(self.ptr[term + 1])) if term < self.n_terms else (0, 0)
        if lo == hi:
            return None
        return (*self.gaps.stored(term), self.tfs[lo:hi], self.titles, lo)

    def rows(self, a: int, b: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Terms ``a:b``'s postings, decoded: (count per term, docs, tfs, in_title)."""
        counts = np.zeros(b - a, np.int64)
        hi = min(b, self.n_terms)
        if a >= hi:
            return counts, np.zeros(0, DOC_DTYPE), self.tfs[:0], np.zeros(0, np.bool_)
        ptr = self.ptr[a : hi + 1] - self.ptr[a]
        counts[: hi - a] = np.diff(ptr)
        lo, end = int(self.ptr[a]), int(self.ptr[hi])
        docs = self.gaps.sliced(a, hi).decode(ptr)
        return counts, docs, self.tfs[lo:end], unbits(self.titles, lo, end)

    def widened(self, n_terms: int) -> "Segment":
        """The same postings with rows for ``n_terms`` terms (the new ones empty)."""
        extra = n_terms - self.n_terms
        if extra <= 0:
            return self
        pad = lambda arr, value: np.concatenate([arr, np.full(extra, value, arr.dtype)])  # noqa: E731
        gaps = DocGaps(self.gaps.data, pad(self.gaps.start, self.gaps.start[-1]), pad(self.gaps.width, 1))
        return Segment(pad(self.ptr, self.ptr[-1]), gaps, self.tfs, self.titles)

    def flags(self) -> np.ndarray:
        """Every posting's title flag."""
        return unbits(self.titles, 0, self.size)

    def doc_frequencies(self, n_terms: int, live: np.ndarray) -> np.ndarray:
        """Per term, how many live documents it occurs in (decoding a range of terms at a
        time, and nothing when every document is live)."""
        df = np.zeros(n_terms, np.int64)
        if self.size == 0:
            return df
        counts = np.diff(self.ptr)
        df[: self.n_terms] = counts
        if bool(live.all()):
            return df
        bounds = _ranges(counts, MERGE_CHUNK)
        for a, b in zip(bounds[:-1], bounds[1:]):
            range_counts, docs, _, _ = self.rows(a, b)
            dead = ~live[docs]
            if dead.any():
                df[a:b] -= np.bincount(np.repeat(np.arange(b - a), range_counts)[dead], minlength=b - a)
        return df

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays to persist, by name."""
        return {"ptr": self.ptr, **self.gaps.arrays(), "tfs": self.tfs, "titles": self.titles}


def merge(segments: list[Segment], live: np.ndarray, n_terms: int, renumber: np.ndarray | None = None,
          chunk: int = MERGE_CHUNK, spill_dir: Path | None = None) -> Segment:
    """One segment holding the live postings of ``segments`` (whose documents must not overlap
    and must ascend from one segment to the next); ``renumber`` maps old document numbers to new.

    A term's merged rows are its rows in each segment, one segment after another, so each
    posting is copied to its place (no sort). Terms are merged a range at a time, about
    ``chunk`` postings per range, so a merge of a million posts' postings (or of the runs of a
    build) needs memory for its compressed input and output and one range decoded, not for
    every posting decoded at once. With ``spill_dir``, large output arrays are files there
    (see :class:`_Filled`).
    """
    full = [s for s in segments if s.size]
    if len(full) == 1 and renumber is None and bool(live.all()):  # e.g. the first build: nothing to merge
        return full[0].widened(n_terms)
    counts = np.zeros(n_terms, np.int64)
    for seg in full:
        counts[: seg.n_terms] += np.diff(seg.ptr)
    tf_type = np.result_type(np.uint8, *(seg.tfs.dtype for seg in full))
    bounds = _ranges(counts, chunk)
    total = int(counts.sum())
    gap_bytes, tf_out, flag_out = (_Filled(4 * total, np.uint8, spill_dir), _Filled(total, tf_type, spill_dir),
                                   _Filled((total + 7) // 8, np.uint8, spill_dir))
    flag_bits = _Bits(flag_out)
    kept_counts, gap_starts, gap_widths = [], [np.zeros(1, np.int64)], []
    joined = native is not None and renumber is None and bool(live.all())
    for a, b in zip(bounds[:-1], bounds[1:]):
        if joined:
            ptr, gaps, tfs, flags = _joined_rows(full, a, b, int(counts[a:b].sum()), tf_type)
        else:
            ptr, gaps, tfs, flags = _merged_rows(full, a, b, counts, live, renumber, tf_type)
        kept_counts.append(np.diff(ptr))
        gap_starts.append(gaps.start[1:] + gap_bytes.size)
        gap_widths.append(gaps.width)
        gap_bytes.add(gaps.data)
        tf_out.add(tfs)
        flag_bits.add(flags)
    flag_bits.close()
    ptr = np.zeros(n_terms + 1, np.int64)
    if kept_counts:
        np.cumsum(np.concatenate(kept_counts), out=ptr[1:])
    if not gap_widths:
        return Segment.empty(n_terms)
    gaps = DocGaps(gap_bytes.filled(), np.concatenate(gap_starts), np.concatenate(gap_widths))
    return Segment(ptr, gaps, narrow(tf_out.filled()), flag_out.filled())


def _merged_rows(full: list[Segment], a: int, b: int, counts: np.ndarray, live: np.ndarray,
                 renumber: np.ndarray | None, tf_type: np.dtype) -> tuple[np.ndarray, DocGaps, np.ndarray, np.ndarray]:
    """Terms ``a:b`` of :func:`merge`: their rows' pointers (from 0), gaps, frequencies and title
    flags. Each segment's rows decoded, put in their places, the dead ones dropped, renumbered and
    encoded again (the reference for :func:`_joined_rows`)."""
    ptr = np.zeros(b - a + 1, np.int64)
    np.cumsum(counts[a:b], out=ptr[1:])
    docs, tfs, flags = np.empty(int(ptr[-1]), DOC_DTYPE), np.empty(int(ptr[-1]), tf_type), np.empty(int(ptr[-1]), np.bool_)
    at = ptr[:-1].copy()  # where each term's next rows go
    for seg in full:
        seg_counts, seg_docs, seg_tfs, seg_flags = seg.rows(a, b)
        if seg_docs.size:
            dest = np.repeat(at - np.concatenate([[0], np.cumsum(seg_counts)[:-1]]), seg_counts)
            dest += np.arange(seg_docs.shape[0])
            docs[dest], tfs[dest], flags[dest] = seg_docs, seg_tfs, seg_flags
            at += seg_counts
    keep = live[docs]
    if not keep.all():
        kept = np.zeros(docs.shape[0] + 1, np.int64)
        np.cumsum(keep, out=kept[1:])
        docs, tfs, flags, ptr = docs[keep], tfs[keep], flags[keep], kept[ptr]
    if renumber is not None:
        docs = renumber[docs].astype(DOC_DTYPE)
    return ptr, DocGaps.encode(docs, ptr), tfs, flags


def _joined_rows(full: list[Segment], a: int, b: int, rows: int, tf_type: np.dtype
                 ) -> tuple[np.ndarray, DocGaps, np.ndarray, np.ndarray]:
    """:func:`_merged_rows` when every document is live and none is renumbered (a build's
    checkpoints, and a merge after posts were only added): each term's rows of one segment
    after another's, their gaps copied as they are but the first, in one pass of the C
    extension's ``join_rows``, with nothing decoded into arrays: merging the 178 million
    postings of a million posts with a thousand more posts' took 0.48-1.33 s of CPU instead of
    2.40-2.59 (three alternating runs, the segments in the page cache)."""
    ptr, start, width = np.empty(b - a + 1, np.int64), np.empty(b - a + 1, np.int64), np.empty(b - a, np.uint8)
    data, tfs, flags = np.empty(4 * rows, np.uint8), np.empty(rows, tf_type), np.empty(rows, np.bool_)
    segments = tuple((seg.ptr, seg.gaps.data, seg.gaps.start, seg.gaps.width, seg.tfs, seg.titles) for seg in full)
    used = native.join_rows(segments, a, ptr, start, width, data, tfs, flags)
    return ptr, DocGaps(data[:used], start, width), tfs, flags


class _Filled:
    """An output array filled a range at a time. In memory it is allocated once at the largest
    size it can reach (pages never written are never resident: ``np.empty`` of that size is
    only address space). A merge's output used to be its parts concatenated, so for a moment it
    held every part and the whole: at a million posts, 800 MB above the rest of a build's
    checkpoint.

    With ``spill_dir``, an array of :data:`FILE_BACKED_BYTES` or more is an unnamed temporary
    file there instead (``spilled``), written range by range and mapped once filled. The final
    merge of a million-post build writes 650 MB of output, and held as the process's own memory
    it was the peak of the build (1.87 GB of a 2 GB machine): the kernel cannot take anonymous
    memory back without swap, while a file's pages it can write out and drop when memory runs
    short. The file is gone once the merged segment is saved and loaded from the index. (It was
    filled through its mapping until a profile of a million-post build's checkpoints found
    6.4 s in the page faults of new pages; writing the same bytes in sequence took 0.12–0.13 s
    against 0.18–1.25 s for 150 million postings.)"""

    def __init__(self, capacity: int, dtype: np.dtype | type, spill_dir: Path | None = None) -> None:
        self._dtype = np.dtype(dtype)
        nbytes = capacity * self._dtype.itemsize
        self.spilled = spill_dir is not None and nbytes > 0 and nbytes >= FILE_BACKED_BYTES
        self._file = tempfile.TemporaryFile(dir=spill_dir) if self.spilled else None
        self._data: np.ndarray | None = None if self.spilled else np.empty(capacity, dtype)
        self.size = 0

    def add(self, values: np.ndarray) -> None:
        if self._file is not None:
            self._file.write(memoryview(np.ascontiguousarray(values, self._dtype)).cast("B"))
        else:
            assert self._data is not None
            self._data[self.size : self.size + values.shape[0]] = values
        self.size += values.shape[0]

    def filled(self) -> np.ndarray:
        """The values added (a view of the allocation, or of the file mapped)."""
        if self._file is not None:
            with self._file as fh:  # (the mapping outlives the file object)
                fh.flush()
                self._data = (np.memmap(fh, self._dtype, "r+", shape=(self.size,)).view(np.ndarray) if self.size
                              else np.empty(0, self._dtype))  # (an empty file cannot be mapped)
            self._file = None
        assert self._data is not None
        return self._data[: self.size]


class _Bits:
    """Title flags packed as :func:`bits` packs them, a merge's range at a time, into ``out``
    (a :class:`_Filled` of bytes): the flags past the range's last whole byte wait for the next
    range's. Written a byte a flag and packed at the end, they took a merge of a million posts'
    postings through 178 MB of its temporary files instead of 22."""

    def __init__(self, out: _Filled) -> None:
        self._out = out
        self._waiting = np.zeros(0, np.bool_)

    def add(self, flags: np.ndarray) -> None:
        flags = np.concatenate([self._waiting, flags]) if self._waiting.size else flags
        whole = flags.shape[0] & ~7
        self._out.add(bits(flags[:whole]))
        self._waiting = flags[whole:].copy()

    def close(self) -> None:
        """Pack the flags still waiting (the last byte, its unused bits 0)."""
        if self._waiting.size:
            self._out.add(bits(self._waiting))
            self._waiting = np.zeros(0, np.bool_)


def _ranges(counts: np.ndarray, chunk: int) -> list[int]:
    """Term boundaries 0 = b0 < b1 < … < bk = len(counts), about ``chunk`` postings apart."""
    total = np.cumsum(counts)
    if not total.size:
        return [0]
    marks = np.arange(chunk, int(total[-1]), chunk)
    inner = np.searchsorted(total, marks, side="right") + 1
    return sorted({0, *inner[inner < counts.shape[0]].tolist(), counts.shape[0]})
