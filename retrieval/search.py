"""Running a parsed query against the index: filters, phrases, ranking, paging, summaries."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Mapping

import numpy as np

from .dates import DateRange
from .docstore import DocStore
from .index import InvertedIndex
from .post import Post
from .query import Query
from .questions import Answer, best_answer
from .summary import SUMMARY_CHARS, Summary, post_summary, query_summary
from .phrases import Phrase, compact, phrase_test
from .tokenizer import Tokenizer


@dataclass(frozen=True, slots=True)
class Ranking:
    """The re-rank on top of BM25: ``score = bm25 * (1 + title_boost * t) * (1 + phrase_bonus * p)``,
    where ``t`` is the share of the query's idf found in the title and ``p`` is 1 when the query's
    words appear as one contiguous phrase. Values were tuned with ``benchmarks/bench_quality.py``."""

    title_boost: float = 1.0
    phrase_bonus: float = 0.25
    enabled: bool = True


NO_RERANK = Ranking(enabled=False)


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


def top_indices(keys: list[np.ndarray], k: int) -> np.ndarray:
    """Indices of the ``k`` largest rows by ``keys`` (first key most significant, then the lower
    index first), in order. A partial selection on the first key, not a full sort; rows tied
    with the k-th are all considered, so every page of a listing agrees with the others."""
    n = keys[0].shape[0]
    pool = np.arange(n)
    if k < n:
        kth = np.partition(keys[0], n - k)[n - k]
        pool = np.flatnonzero(keys[0] >= kth)
    order = np.lexsort([pool, *(-key[pool] for key in reversed(keys))])
    return pool[order[:k]]


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
        self._posts: dict[int, Post] = {}

    # ---- helpers ----------------------------------------------------------------------------
    def _post(self, doc: int) -> Post:
        post = self._posts.get(doc)
        if post is None:
            post = self._posts[doc] = self.docs.post(doc)
        return post

    def _docs_with_all(self, tokens: list[str], within: np.ndarray) -> np.ndarray:
        for token in dict.fromkeys(tokens):
            term = self.index.vocab.get(token)
            if term is None:
                return within[:0]
            has = np.zeros(self.index.n_docs, np.bool_)  # a mask, not np.isin's sort of both
            has[self.index.docs_with_term(term)] = True
            within = within[has[within]]
        return within

    def _docs_with_phrase(self, words: str, within: np.ndarray) -> np.ndarray:
        phrase = Phrase.of(words, self.tokenizer)
        if phrase is None:
            return within[:0]
        found = self._docs_with_all(list(phrase.tokens), within)
        if not phrase.needs_text or not found.size:
            return found
        test = phrase.test()
        return found[np.fromiter(map(test, self.docs.texts(found.tolist())), np.bool_, found.shape[0])]

    def _filter(self, query: Query, mask: np.ndarray) -> np.ndarray:
        if not query.dates.unbounded:
            mask &= self.docs.in_range(query.dates)
        for kind, labels in (("tags", query.tags), ("categories", query.categories)):
            for label in labels:
                allowed = np.zeros_like(mask)
                allowed[self.docs.docs_with_label(kind, label)] = True
                mask &= allowed
        for phrase in query.phrases:
            keep = self._docs_with_phrase(phrase, np.flatnonzero(mask))
            mask[:] = False
            mask[keep] = True
        for word in query.excluded:
            mask[self._docs_with_phrase(word, np.flatnonzero(mask))] = False
        return mask

    # ---- ranking ----------------------------------------------------------------------------
    def _rank(self, query: Query, tokens: list[str], cand: np.ndarray, scores, title_idf, query_idf, k: int):
        base = scores[cand]
        if not self.ranking.enabled:
            order = top_indices([base, self.docs.dates[cand].astype(np.float64)], k)
            return cand[order], base[order]
        pre = base * (1 + self.ranking.title_boost * title_idf[cand] / query_idf) if query_idf > 0 else base
        phrase = compact(query.ranked_text)
        bonus = self.ranking.phrase_bonus
        if len(set(tokens)) < 2 or query.phrases or bonus <= 0 or not phrase:
            order = top_indices([pre, self.docs.dates[cand].astype(np.float64)], k)
            return cand[order], pre[order]
        # The phrase bonus only raises scores, by at most (1 + bonus): examine candidates in
        # descending pre-bonus order until none left can enter the top k.
        pool = min(cand.shape[0], max(3 * k, 30))
        test = phrase_test(phrase)
        has: dict[int, bool] = {}  # candidates' phrase tests so far (a larger pool holds the last)
        while True:
            top = top_indices([pre], pool)
            docs = cand[top].tolist()
            fresh = [d for d in docs if d not in has]
            has.update(zip(fresh, map(test, self.docs.texts(fresh))))
            flags = np.fromiter((has[d] for d in docs), np.bool_, len(docs))
            final = pre[top] * np.where(flags, 1 + bonus, 1.0)
            order = top_indices([final, self.docs.dates[cand[top]].astype(np.float64)], min(k, pool))
            kth = final[order[-1]] if order.size else 0.0
            if pool == cand.shape[0] or pre[top[-1]] * (1 + bonus) <= kth:
                return cand[top[order]], final[order]
            pool = min(cand.shape[0], pool * 4)

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
        self._posts.clear()
        limit, offset = max(1, limit), max(0, offset)
        tokens = query_tokens(query, self.tokenizer, self.index.vocab)
        if query.has_terms:
            hits = self.index.score(tokens, titles=self.ranking.enabled)
            mask = hits.matched
            if query.recent:  # newest first: of the posts with every word, where there are any
                every = self._docs_with_all(tokens, np.flatnonzero(mask))
                if every.size:
                    mask = np.zeros_like(mask)
                    mask[every] = True
        else:
            mask = self.index.live.copy()
        mask = self._filter(query, mask)
        cand = np.flatnonzero(mask)
        total = int(cand.shape[0])
        k = min(total, offset + limit)
        if k <= offset:
            return SearchPage(query, [], total, offset, limit, query.has_terms, tuple(tokens))
        if not query.has_terms:  # a listing: newest first, each with its lead
            order = top_indices([self.docs.dates[cand].astype(np.float64), cand.astype(np.float64)], k)
            page = [Hit(post, None, post_summary(post, summary_chars))
                    for post in map(self._post, cand[order][offset:k].tolist())]
            return SearchPage(query, page, total, offset, limit, False, tuple(tokens))
        if query.recent:  # newest first, the better match first on the same date
            order = top_indices([self.docs.dates[cand].astype(np.float64), hits.scores[cand]], k)
            docs = cand[order]
            scores = hits.scores[docs]
        else:
            docs, scores = self._rank(query, tokens, cand, hits.scores, hits.title_idf, hits.query_idf, k)
        weights = {t: float(self.index.idf[self.index.vocab[t]]) for t in tokens if t in self.index.vocab}
        page = [Hit(post, float(score), query_summary(post.body, tokens, weights, summary_chars))
                for post, score in zip(map(self._post, docs[offset:k].tolist()), scores[offset:k])]
        answer = None
        if query.question and offset == 0 and not query.recent:
            answer = best_answer([h.post for h in page], query.ranked_text, tokens)
        return SearchPage(query, page, total, offset, limit, True, tuple(tokens), answer)
