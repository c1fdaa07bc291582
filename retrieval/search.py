"""Running a parsed query against the index: filters, phrases, ranking, paging, summaries."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Mapping

import numpy as np

from .checks import TextChecks, Total
from .dates import DateRange
from .docstore import DocStore
from .index import InvertedIndex, TermHits
from .phrases import Phrase, compact, phrase_test
from .post import Post
from .query import Query
from .questions import Answer, best_answer
from .summary import SUMMARY_CHARS, Summary, post_summary, query_summary
from .tokenizer import Tokenizer


@dataclass(frozen=True, slots=True)
class Ranking:
    """The re-rank on top of BM25: ``score = bm25 * (1 + title_boost * t) * (1 + phrase_bonus * p)``,
    where ``t`` is the share of the query's idf found in the title and ``p`` is 1 when the query's
    words appear as one contiguous phrase. Values were tuned with ``benchmarks/bench_quality.py``.

    The phrase test reads a post's text, so, as Solr's rerank query and Elasticsearch's rescorer
    do, it looks at no more than the first ``rescore_window`` candidates by the rest of the
    score (fewer when those already settle the page); below them a post would need the bonus
    to climb past hundreds of others."""

    title_boost: float = 1.0
    phrase_bonus: float = 0.25
    enabled: bool = True
    rescore_window: int = 500


NO_RERANK = Ranking(enabled=False)

#: The fewest candidates examined at once when text checks are left to the ranking.
MIN_POOL = 32
#: The sample :func:`kth_largest` draws, and how many of its values past the k-th it keeps
#: below the guess (so that the guess leaves at least k rows, or it falls back to all).
KTH_SAMPLE = 4096
KTH_MARGIN = 16

#: Tie-break keys for some rows (indices into the candidates), most significant first.
TieKeys = Callable[[np.ndarray], list[np.ndarray]]


@dataclass(frozen=True, slots=True)
class Hit:
    """One result: the post, its score (None in date listings) and its summary."""

    post: Post
    score: float | None
    summary: Summary


@dataclass(frozen=True, slots=True)
class SearchPage:
    """A page of results. ``ranked`` is False for date listings (filters only, newest first);
    ``tokens`` are the query's search terms (empty when it had none)."""

    query: Query
    hits: list[Hit]
    total: int
    offset: int
    limit: int
    ranked: bool
    tokens: tuple[str, ...] = field(default=())
    #: For a question, on its first page: the sentence that best answers it.
    answer: Answer | None = None
    #: No post has the dates read from the words (these): the page ignores them.
    relaxed_dates: DateRange | None = None
    #: False when ``total`` is an estimate (a phrase with many candidates: see :mod:`.checks`).
    total_exact: bool = True

    @property
    def has_next(self) -> bool:
        return self.offset + len(self.hits) < self.total

    @property
    def page_number(self) -> int:
        """1-based."""
        return self.offset // self.limit + 1 if self.limit else 1

    @property
    def page_count(self) -> int:
        return max(1, -(-self.total // self.limit)) if self.limit else 1


def top_indices(first: np.ndarray, k: int, ties: TieKeys | None = None) -> np.ndarray:
    """Indices of the ``k`` largest rows by ``first``, in order; rows tied on it are ordered by
    the keys ``ties(rows)`` gives (most significant first, larger first), then the lower index
    first. A partial selection, not a full sort, and the tie keys are read only for the rows
    near the top; rows tied with the k-th are all considered, so every page agrees with the
    others."""
    n = first.shape[0]
    if k < n:
        pool = np.flatnonzero(first >= kth_largest(first, k))
    else:
        pool = np.arange(n)
    extra = ties(pool) if ties is not None else []
    order = np.lexsort([pool, *(-key for key in reversed(extra)), -first[pool]])
    return pool[order[:k]]


def kth_largest(values: np.ndarray, k: int) -> float:
    """The ``k``-th largest of ``values`` (1 <= k <= len). An even sample first gives a value
    that some more than k exceed, so only those few are partitioned, not every candidate (a
    common word has hundreds of thousands at a million posts)."""
    n = values.shape[0]
    step = n // KTH_SAMPLE
    if step >= 4:
        sample = values[::step]
        j = min(sample.shape[0], k // step + KTH_MARGIN)
        guess = np.partition(sample, sample.shape[0] - j)[sample.shape[0] - j]
        above = values[values >= guess]
        if above.shape[0] >= k:
            return float(np.partition(above, above.shape[0] - k)[above.shape[0] - k])
    return float(np.partition(values, n - k)[n - k])


def query_tokens(query: Query, tokenizer: Tokenizer, vocab: Mapping[str, int] | None = None) -> list[str]:
    """The tokens a query is ranked by; none when its words and phrases hold nothing
    searchable (then the query has terms but cannot match any post). With the index's
    ``vocab``, a token the index has never seen is replaced by its longest parts that it has:
    jieba glues an unknown name to the next character (``潘淑是怎么死的`` → ``潘淑是``)."""
    phrase = Phrase.of(query.ranked_text, tokenizer) if query.has_terms else None
    tokens = list(phrase.tokens) if phrase is not None else []
    if vocab is None:
        return tokens
    out: list[str] = []
    for token in tokens:
        out += [token] if token in vocab or len(token) < 3 else (backed_off(token, vocab) or [token])
    return out


def backed_off(token: str, vocab: Mapping[str, int]) -> list[str]:
    """The longest pieces of ``token`` (two characters or more, not overlapping, left to right)
    that ``vocab`` knows."""
    pieces: list[str] = []
    taken = [False] * len(token)
    for size in range(len(token) - 1, 1, -1):
        for i in range(len(token) - size + 1):
            piece = token[i : i + size]
            if piece in vocab and not any(taken[i : i + size]):
                pieces.append(piece)
                taken[i : i + size] = [True] * size
    return sorted(pieces, key=token.index)


class Searcher:
    """Runs queries over one index and its document store."""

    def __init__(self, index: InvertedIndex, docs: DocStore, tokenizer: Tokenizer, ranking: Ranking) -> None:
        self.index, self.docs, self.tokenizer, self.ranking = index, docs, tokenizer, ranking

    # ---- helpers ----------------------------------------------------------------------------

    def _holding_all(self, tokens: list[str] | tuple[str, ...], docs: np.ndarray) -> np.ndarray:
        """Per document of ``docs``: whether it holds every one of ``tokens``."""
        keep = np.ones(docs.shape[0], np.bool_)
        for token in dict.fromkeys(tokens):
            term = self.index.vocab.get(token)
            if term is None:
                return np.zeros(docs.shape[0], np.bool_)
            has = np.zeros(self.index.n_docs, np.bool_)  # a mask, not np.isin's sort of both
            has[self.index.docs_with_term(term)] = True
            keep &= has[docs]
        return keep

    def _filter(self, query: Query, docs: np.ndarray) -> tuple[np.ndarray, TextChecks]:
        """Per document of ``docs``: whether what the index decides lets it through (dates,
        labels, the tokens of phrases and exclusions); and the checks of the posts' texts that
        are left (see :mod:`.checks`)."""
        keep = np.ones(docs.shape[0], np.bool_)
        checks = TextChecks(self.docs, self.index.n_docs)
        if not query.dates.unbounded:
            keep &= self.docs.in_range(query.dates, docs)
        for kind, labels in (("tags", query.tags), ("categories", query.categories)):
            for label in labels:
                allowed = np.zeros(self.index.n_docs, np.bool_)
                allowed[self.docs.docs_with_label(kind, label)] = True
                keep &= allowed[docs]
        for words in query.phrases:
            phrase = Phrase.of(words, self.tokenizer)
            if phrase is None:  # nothing searchable in it: nothing can hold it
                keep[:] = False
                continue
            keep &= self._holding_all(phrase.tokens, docs)
            checks.require(phrase, docs[keep])
        for words in query.excluded:
            phrase = Phrase.of(words, self.tokenizer)
            if phrase is None:
                continue
            holders = keep & self._holding_all(phrase.tokens, docs)
            if phrase.needs_text:
                checks.exclude(phrase, docs[holders])
            else:
                keep &= ~holders
        return keep, checks

    def _candidates(self, query: Query, docs: np.ndarray) -> tuple[np.ndarray, TextChecks | None]:
        """Per document of ``docs``: whether it is a candidate after the filters; and the text
        checks still to run on the candidates (None when there were none, or few enough to run
        on all of them now)."""
        keep, checks = self._filter(query, docs)
        if not checks:
            return keep, None
        passing = checks.settle(docs[keep])
        if passing is None:
            return keep, checks
        keep[keep] = passing
        return keep, None

    @staticmethod
    def _first(cand: np.ndarray, first: np.ndarray, k: int, checks: TextChecks | None,
               ties: TieKeys | None = None) -> tuple[np.ndarray, Total]:
        """Indices into ``cand`` of its first ``k`` rows (see :func:`top_indices`) that pass
        ``checks``, and the total that pass: rows are checked in order, only until k + 1 passed."""
        n = cand.shape[0]
        if checks is None:
            return top_indices(first, k, ties), Total(n)
        pool = min(n, max(2 * (k + 1), MIN_POOL))
        while True:
            top = top_indices(first, pool, ties)
            ok = checks.passing(cand[top])
            passed = int(np.count_nonzero(ok))
            if passed > k or pool == n:
                return top[ok][:k], checks.total(cand, top, passed)
            pool = min(n, pool * 4)

    def _dates(self, docs: np.ndarray) -> np.ndarray:
        """Post dates as sort keys (float: UNDATED, the smallest int64, cannot be negated)."""
        return self.docs.dates[docs].astype(np.float64)

    # ---- ranking ----------------------------------------------------------------------------
    def _rank(self, query: Query, tokens: list[str], hits: TermHits, k: int,
              checks: TextChecks | None) -> tuple[np.ndarray, np.ndarray, Total]:
        """The first ``k`` candidates by score (re-ranked unless that is off), their scores,
        and the total that pass ``checks``."""
        cand, base = hits.docs, hits.scores
        by_date: TieKeys = lambda rows: [self._dates(cand[rows])]  # noqa: E731
        if not self.ranking.enabled or hits.title_idf is None:
            top, total = self._first(cand, base, k, checks, by_date)
            return cand[top], base[top], total
        pre = base * (1 + self.ranking.title_boost * hits.title_idf / hits.query_idf) if hits.query_idf > 0 else base
        phrase = compact(query.ranked_text)
        bonus = self.ranking.phrase_bonus
        if len(set(tokens)) < 2 or query.phrases or bonus <= 0 or not phrase:
            top, total = self._first(cand, pre, k, checks, by_date)
            return cand[top], pre[top], total
        # The phrase bonus only raises scores, by at most (1 + bonus): examine candidates in
        # descending pre-bonus order until none left can enter the top k, or the window ends.
        n = cand.shape[0]
        window = max(self.ranking.rescore_window, k)
        pool = min(n, max(3 * k, 30))
        test = phrase_test(phrase)
        has: dict[int, bool] = {}  # candidates' phrase tests so far (a larger pool holds the last)
        while True:
            top = top_indices(pre, pool)
            ok = checks.passing(cand[top]) if checks else np.ones(top.shape[0], np.bool_)
            top_ok = top[ok]
            docs = cand[top_ok].tolist()
            fresh = [d for d in docs if d not in has]
            has.update(zip(fresh, map(test, self.docs.texts(fresh))))
            flags = np.fromiter((has[d] for d in docs), np.bool_, len(docs))
            final = pre[top_ok] * np.where(flags, 1 + bonus, 1.0)
            order = top_indices(final, min(k, top_ok.shape[0]), lambda rows: [self._dates(cand[top_ok[rows]])])
            kth = final[order[-1]] if order.shape[0] == k else 0.0
            passed = int(top_ok.shape[0])
            beyond = pre[top[-1]] * (1 + bonus) <= kth or pool >= window
            if pool == n or (beyond and (checks is None or passed > k)):
                total = checks.total(cand, top, passed) if checks else Total(n)
                return cand[top_ok[order]], final[order], total
            pool = min(n, pool * 4 if pool >= window else min(pool * 4, window))

    def run(self, query: Query, limit: int = 10, offset: int = 0, summary_chars: int = SUMMARY_CHARS) -> SearchPage:
        """One page of results for ``query``. When dates read from its words leave nothing
        (``1903年…`` asked of undated or older posts), the words run without them."""
        page = self._run(query, limit, offset, summary_chars)
        if page.total == 0 and query.dates_in_words and query.has_terms:
            relaxed = self._run(query.relaxed(), limit, offset, summary_chars)
            if relaxed.total:
                return replace(relaxed, relaxed_dates=query.dates)
        return page

    def _run(self, query: Query, limit: int, offset: int, summary_chars: int) -> SearchPage:
        limit, offset = max(1, limit), max(0, offset)
        tokens = query_tokens(query, self.tokenizer, self.index.vocab)
        if not query.has_terms:
            return self._listing(query, limit, offset, summary_chars)
        hits = self.index.score(tokens, titles=self.ranking.enabled)
        if query.recent:  # newest first: of the posts with every word, where there are any
            every = self._holding_all(tokens, hits.docs)
            if every.any():
                hits = hits.where(every)
        keep, checks = self._candidates(query, hits.docs)
        hits = hits.where(keep)
        k = min(hits.docs.shape[0], offset + limit)
        if k <= offset and checks is None:
            return SearchPage(query, [], int(hits.docs.shape[0]), offset, limit, True, tuple(tokens))
        if query.recent:  # newest first, the better match first on the same date
            top, total = self._first(hits.docs, self._dates(hits.docs), k, checks, lambda rows: [hits.scores[rows]])
            docs, scores = hits.docs[top], hits.scores[top]
        else:
            docs, scores, total = self._rank(query, tokens, hits, k, checks)
        weights: dict[str, float] = {}  # the summaries' term weights (one vocabulary lookup a token)
        if summary_chars > 0:
            numbers = {t: self.index.vocab.get(t) for t in tokens}
            weights = {t: float(self.index.idf[n]) for t, n in numbers.items() if n is not None}
        page = [Hit(post, float(score), query_summary(post.body, tokens, weights, summary_chars))
                for post, score in zip(self.docs.posts(docs[offset:k].tolist()), scores[offset:k])]
        answer = None
        if query.question and offset == 0 and not query.recent:
            answer = best_answer([h.post for h in page], query.ranked_text, tokens)
        return SearchPage(query, page, total.count, offset, limit, True, tuple(tokens), answer, total_exact=total.exact)

    def _listing(self, query: Query, limit: int, offset: int, summary_chars: int) -> SearchPage:
        """A query without words: the posts its filters leave, newest first, each with its lead."""
        docs = np.flatnonzero(self.index.live)
        keep, checks = self._candidates(query, docs)
        cand = docs[keep]
        k = min(cand.shape[0], offset + limit)
        if k <= offset and checks is None:
            return SearchPage(query, [], int(cand.shape[0]), offset, limit, False)
        top, total = self._first(cand, self._dates(cand), k, checks, lambda rows: [cand[rows].astype(np.float64)])
        page = [Hit(post, None, post_summary(post, summary_chars))
                for post in self.docs.posts(cand[top][offset:k].tolist())]
        return SearchPage(query, page, total.count, offset, limit, False, total_exact=total.exact)
