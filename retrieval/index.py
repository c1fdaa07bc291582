"""The inverted index: vocabulary, a large main segment and a small delta segment of postings,
document lengths and liveness, and the corpus statistics BM25 needs.

New documents go to the delta segment, so adding a post does not rewrite the main
one; removed documents are only marked dead until the next merge. Scoring reads
the postings of the query's terms and nothing else.
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .bm25 import BM25Params, idf_table, length_norms, term_scores
from .native import native
from .postings import Segment, merge
from .strings import Strings

#: Merge the delta into the main segment once it holds this many documents…
MERGE_MIN_DOCS = 2000
#: …or this share of all documents, whichever is larger.
MERGE_SHARE = 0.05
#: Queued postings are packed into a segment of their own ("run") at this many: a build
#: queues every posting, which would take gigabytes unpacked (9 bytes each), and packing
#: takes about 75 bytes a posting for a moment. But each run also has two offsets per term of
#: the vocabulary (4 MB at 250,000 terms), so runs of a million postings spent 120 MB more of
#: a 200,000-post checkpoint's memory on offsets than runs of four million.
RUN_POSTINGS = 4_000_000


@dataclass(frozen=True, slots=True)
class DocTerms:
    """Documents' distinct terms (vocabulary numbers), their frequencies and title flags, one
    row a term, the documents' rows one after another; per document, how many rows it has
    and its length in tokens (see :class:`~retrieval.analyze.TermCounter`, which counts them).
    A build adds a worker's batch of documents as one (see :meth:`InvertedIndex.add`)."""

    terms: np.ndarray
    tfs: np.ndarray
    in_title: np.ndarray
    rows: np.ndarray
    lengths: np.ndarray


@dataclass(frozen=True, slots=True)
class TermHits:
    """What a set of query terms found: the live documents holding any of them (``docs``,
    ascending), and aligned with those, their BM25 and the idf mass their titles match (for
    the re-rank; None when not asked for). Sparse: a query touches a fraction of the posts,
    and arrays over all of them cost milliseconds each at a million."""

    docs: np.ndarray
    scores: np.ndarray
    title_idf: np.ndarray | None
    query_idf: float

    def where(self, keep: np.ndarray) -> TermHits:
        """The hits whose rows ``keep`` marks (a boolean mask over ``docs``)."""
        if keep.all():
            return self
        title_idf = None if self.title_idf is None else self.title_idf[keep]
        return TermHits(self.docs[keep], self.scores[keep], title_idf, self.query_idf)

    def dense(self, n_docs: int) -> np.ndarray:
        """The scores as one array over all documents, zero where nothing matched."""
        out = np.zeros(n_docs, np.float64)
        out[self.docs] = self.scores
        return out


class Scratch:
    """Dense per-document arrays for summing several postings lists the NumPy way (the C
    scorer merges the lists instead), kept from query to query and zeroed only where a query
    wrote: fresh arrays cost their page faults, about 3 ms for the 17 MB of them at a million
    posts. Owned by one index and used by one query at a time:
    an archive is searched from one thread at a time (its searcher keeps per-query state too;
    the bot's service holds a lock around it)."""

    def __init__(self) -> None:
        self._arrays: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def take(self, n_docs: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All-zero scores, title idf and matched flags for ``n_docs`` documents."""
        if self._arrays is None or self._arrays[0].shape[0] != n_docs:
            self._arrays = (np.zeros(n_docs), np.zeros(n_docs), np.zeros(n_docs, np.bool_))
        return self._arrays

    def clear(self, touched: np.ndarray | None) -> None:
        """Zero the arrays at ``touched`` (None: the writes are not known; drop the arrays)."""
        if self._arrays is None:
            return
        if touched is None:
            self._arrays = None
            return
        for values in self._arrays:
            values[touched] = 0


class InvertedIndex:
    """Postings and statistics over documents numbered 0..n-1 (dead ones included)."""

    def __init__(
        self,
        vocab: Strings | None = None,
        main: Segment | None = None,
        delta: Segment | None = None,
        doc_len: np.ndarray | None = None,
        live: np.ndarray | None = None,
        params: BM25Params = BM25Params(),
        main_df: np.ndarray | None = None,
        spill_dir: Path | None = None,
    ) -> None:
        #: Term -> term id (a :class:`~retrieval.strings.Strings`, looked up without decoding it).
        self.vocab = vocab if vocab is not None else Strings()
        self.main = main or Segment.empty()
        self.delta = delta or Segment.empty()
        self.doc_len = doc_len if doc_len is not None else np.zeros(0, np.int32)
        self.live = live if live is not None else np.zeros(0, np.bool_)
        self.params = params
        #: Where merges put their large output arrays, as files (see ``postings._Filled``):
        #: the index directory of an archive that writes it; else they are memory.
        self.spill_dir = spill_dir
        # Queued documents' postings (views of their batches' arrays), packed into runs as
        # they pile up, and the documents' lengths.
        self._queued: list[DocTerms] = []
        self._queued_postings = 0
        self._runs: list[Segment] = []
        self._run_base = 0  # the first queued document not in a run yet
        self._pending_lens = array("i")
        self._delta_base = int(self.delta.docs.min()) if self.delta.size else None
        self._scratch = Scratch()
        #: Per term, the live documents of the main segment that hold it: kept up to date as
        #: documents die (decoding a big main segment to count again would take seconds).
        self.main_df = np.diff(self.main.ptr) if main_df is None else np.array(main_df, np.int64)
        if self.main_df.shape[0] != self.main.n_terms:
            raise ValueError("main document frequencies disagree with the main segment")
        self.refresh_statistics()

    # ---- statistics -------------------------------------------------------------------------
    def refresh_statistics(self) -> None:
        """Recompute df, idf, avgdl and length norms over the live documents."""
        n_terms = len(self.vocab)
        self.n_live = int(self.live.sum())
        self.df = self.delta.doc_frequencies(n_terms, self.live)
        self.df[: self.main_df.shape[0]] += self.main_df
        total = int(self.doc_len[self.live].sum(dtype=np.int64)) if self.n_live else 0
        self.avgdl = total / self.n_live if self.n_live else 0.0
        self.idf = idf_table(self.df, self.n_live, self.params)
        self.norms = length_norms(self.doc_len, self.avgdl, self.params)

    @property
    def n_docs(self) -> int:
        """Document numbers in use, dead and queued ones included."""
        return int(self.doc_len.shape[0]) + len(self._pending_lens)

    # ---- updates ----------------------------------------------------------------------------
    def add(self, terms: DocTerms) -> int:
        """Queue documents for the delta segment; returns the first one's number (the rest
        follow it). Call :meth:`commit` after."""
        doc = self.n_docs
        if not self._queued:
            self._run_base = doc
        self._queued.append(terms)
        self._queued_postings += terms.terms.shape[0]
        self._pending_lens.frombytes(np.asarray(terms.lengths, np.int32).tobytes())
        if self._queued_postings >= RUN_POSTINGS:
            self._pack_run()
        return doc

    def _pack_run(self) -> None:
        """Pack the queued postings into a run (sorted by term, gaps encoded)."""
        if not self._queued:
            return
        queued, self._queued, self._queued_postings = self._queued, [], 0
        terms = np.concatenate([d.terms for d in queued])
        rows = np.concatenate([d.rows for d in queued])
        docs = np.repeat(np.arange(self._run_base, self._run_base + rows.shape[0], dtype=np.int32), rows)
        tfs = np.concatenate([d.tfs for d in queued])
        flags = np.concatenate([d.in_title for d in queued])
        self._runs.append(Segment.from_postings(terms, docs, tfs, flags, int(terms.max()) + 1 if terms.size else 0))

    def is_live(self, doc: int) -> bool:
        """Whether ``doc`` counts (documents queued since the last commit do)."""
        return doc >= self.live.shape[0] or bool(self.live[doc])

    def live_docs(self) -> np.ndarray:
        """The documents that count, ascending (queued ones included)."""
        return np.concatenate([np.flatnonzero(self.live), np.arange(self.live.shape[0], self.n_docs)])

    def remove(self, doc: int, tokens: Iterable[str]) -> None:
        """Mark a document dead (``tokens``: the tokens it was indexed under, to count it out of
        the main segment's document frequencies); its postings stay until the next merge."""
        if not self.live[doc]:
            return
        self.live[doc] = False
        in_main = doc < (self._delta_base if self._delta_base is not None else self.live.shape[0])
        if in_main:
            ids = [t for t in map(self.vocab.get, set(tokens)) if t is not None and t < self.main_df.shape[0]]
            self.main_df[ids] -= 1

    def commit(self) -> bool:
        """Fold queued documents into the delta segment and refresh statistics.

        Returns True when the delta grew large enough to be merged into the main segment.
        """
        if self._pending_lens:
            first = self.doc_len.shape[0]
            self._pack_run()
            self.doc_len = np.concatenate([self.doc_len, np.frombuffer(self._pending_lens, np.int32)])
            self.live = np.concatenate([self.live, np.ones(len(self._pending_lens), np.bool_)])
            self._pending_lens = array("i")
            runs, self._runs = [self.delta, *self._runs], []
            # Only as many rows as the delta's own terms: it is written at every save.
            self.delta = merge(runs, self.live, max(run.n_terms for run in runs), spill_dir=self.spill_dir)
            if self._delta_base is None:
                self._delta_base = first
        self.refresh_statistics()
        delta_docs = 0 if self._delta_base is None else self.n_docs - self._delta_base
        return delta_docs >= max(MERGE_MIN_DOCS, int(MERGE_SHARE * self.n_docs))

    def merge_delta(self, renumber: np.ndarray | None = None) -> None:
        """Merge the delta into the main segment, dropping dead postings.

        With ``renumber`` (old number -> new number, for live documents) dead documents are
        compacted away; the caller renumbers its own per-document data the same way.
        """
        n_terms = len(self.vocab)
        self.main = merge([self.main, self.delta], self.live, n_terms, renumber, spill_dir=self.spill_dir)
        self.main_df = np.diff(self.main.ptr)  # dead postings were dropped
        self.delta = Segment.empty()
        self._delta_base = None
        if renumber is not None:
            keep = self.live
            self.doc_len = self.doc_len[keep].copy()
            self.live = np.ones(int(keep.sum()), np.bool_)
        self.refresh_statistics()

    # ---- scoring ----------------------------------------------------------------------------
    def term_ids(self, tokens: list[str]) -> Counter[int]:
        """Query tokens as term ids with their counts; tokens no live document holds are left
        out (idf 0), as rank-bm25, which knows only the documents' terms, leaves them out."""
        numbers = (self.vocab.get(t) for t in tokens)
        df = self.df
        return Counter(t for t in numbers if t is not None and t < df.shape[0] and df[t] > 0)

    def postings(self, term: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """A term's postings in each segment (ValueError if they name documents past the last:
        the main segment's documents are checked as they are decoded, not all at open)."""
        found = [self.main.postings(term), self.delta.postings(term)]
        if any(docs.size and int(docs[-1]) >= self.live.shape[0] for docs, _, _ in found):
            raise ValueError(f"the postings of term {term} name documents past the last")
        return found

    def docs_with_term(self, term: int) -> np.ndarray:
        """Live documents containing the term."""
        docs = np.concatenate([d for d, _, _ in self.postings(term)])
        return docs[self.live[docs]]

    def score(self, tokens: list[str], titles: bool = True) -> TermHits:
        """BM25Okapi of the live documents that hold any of the query tokens, and with
        ``titles`` the idf mass each one's title matches (for the re-rank).

        Only the query terms' postings are read. With the C extension the lists of postings
        (one per term and segment) are decoded, scored and merged in one pass
        (:meth:`_score_native`); the NumPy way (:meth:`_score_arrays`) is the reference.
        """
        terms = self.term_ids(tokens)
        weighted = [(float(self.idf[term]), count, term) for term, count in terms.items()]
        query_idf = sum(max(idf, 0.0) for idf, _, _ in weighted)
        if native is not None:
            return self._score_native(weighted, titles, query_idf)
        return self._score_arrays(weighted, titles, query_idf)

    def _score_native(self, weighted: list[tuple[float, int, int]], titles: bool, query_idf: float) -> TermHits:
        """:meth:`_score_arrays` in C, which merges the lists of postings as it decodes them.
        At a million posts a common word has a few hundred thousand postings, and NumPy's
        passes over them (decode, gather, four arithmetic steps, scatter, flags, liveness,
        gather again) took most of a search's time."""
        lists = tuple((*stored, idf, count) for idf, count, term in weighted
                      for stored in (self.main.stored(term), self.delta.stored(term)) if stored is not None)
        found = sum(fields[2].shape[0] for fields in lists)
        docs, scores, title_idf = np.empty(found, np.int64), np.empty(found), np.empty(found) if titles else None
        kept = native.score_lists(lists, self.norms, self.params.k1 + 1, self.live, docs, scores, title_idf)
        return TermHits(docs[:kept], scores[:kept], None if title_idf is None else title_idf[:kept], query_idf)

    def _score_arrays(self, weighted: list[tuple[float, int, int]], titles: bool, query_idf: float) -> TermHits:
        """The scores in NumPy. One list of postings (one term, one segment: the usual short
        query) is scored in place; several are summed over dense arrays, cheaper than merging
        sorted lists of a hundred thousand postings each."""
        lists = [(idf, count, found) for idf, count, term in weighted for found in self.postings(term) if found[0].size]
        if not lists:
            return TermHits(np.zeros(0, np.int64), np.zeros(0), np.zeros(0) if titles else None, query_idf)
        if len(lists) == 1:
            idf, count, (docs, tfs, flags) = lists[0]
            scores = term_scores(idf, tfs, self.norms[docs], self.params)
            if count > 1:
                scores *= count
            title_idf = flags * max(idf, 0.0) if titles else None
            return TermHits(docs, scores, title_idf, query_idf).where(self.live[docs])
        scores, title_idf, matched = self._scratch.take(self.n_docs)
        touched = None  # where the arrays were written, once known
        try:
            for position, (idf, count, (docs, tfs, flags)) in enumerate(lists):
                contrib = term_scores(idf, tfs, self.norms[docs], self.params)
                if count > 1:
                    contrib *= count
                if position == 0:  # the arrays are all zero: no need to read them first
                    scores[docs] = contrib
                else:
                    scores[docs] += contrib
                matched[docs] = True
                if titles:
                    title_idf[docs[flags]] += max(idf, 0.0)
            touched = np.flatnonzero(matched)
            docs = touched[self.live[touched]]
            return TermHits(docs, scores[docs], title_idf[docs] if titles else None, query_idf)
        finally:
            self._scratch.clear(touched)
