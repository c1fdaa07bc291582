"""The part of a query's filters that only a post's text can decide, left to the end.

A quoted phrase keeps the posts that hold its tokens *and* its words contiguously; an excluded
word drops the posts that hold it. The tokens come from the postings; contiguity needs the
post's stored text, decoded and searched at about 5 µs a post on a million-post archive. A
phrase such as ``"新时代"`` has eighty thousand candidates there: checking them all costs 0.4 s
for a page that shows five.

So the checks run on candidates as a page needs them, in rank order, and are remembered. When
few candidates need one (:data:`EXACT_CHECKS`), all are checked first and the total is exact;
past that, the total is estimated from a random sample of the candidates and the page says
"about" (Elasticsearch counts exactly only up to ``track_total_hits`` too).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .docstore import DocStore
from .phrases import Phrase

#: Candidates needing a text check that are all checked up front (the total is then exact):
#: about 10 ms of checks at a million posts.
EXACT_CHECKS = 2_000
#: Candidates checked, drawn at random, to estimate a total past EXACT_CHECKS.
ESTIMATE_SAMPLE = 400


@dataclass(frozen=True, slots=True)
class Total:
    """How many posts a query found: exact, or an estimate (never below what was seen)."""

    count: int
    exact: bool = True


class TextChecks:
    """Phrases a post must contain and exclusions it must not, for the candidates whose
    tokens leave the answer open. ``_pending`` marks those documents (a dense mask, made with
    the first check: most queries have none)."""

    def __init__(self, docs: DocStore, n_docs: int) -> None:
        self._docs, self._n_docs = docs, n_docs
        self._required: list[Callable[[bytes], bool]] = []
        self._excluded: list[tuple[Callable[[bytes], bool], np.ndarray]] = []
        self._pending = np.zeros(0, np.bool_)
        self._known: dict[int, bool] = {}

    def _mark(self, holders: np.ndarray) -> np.ndarray:
        """``holders`` as a mask over all documents, which are now pending as well."""
        if not self._pending.shape[0]:
            self._pending = np.zeros(self._n_docs, np.bool_)
        marked = np.zeros(self._n_docs, np.bool_)
        marked[holders] = True
        self._pending |= marked
        return marked

    def require(self, phrase: Phrase, holders: np.ndarray) -> None:
        """Candidates ``holders`` (they have the phrase's tokens) must hold its words together."""
        if phrase.needs_text:
            self._required.append(phrase.test())
            self._mark(holders)

    def exclude(self, phrase: Phrase, holders: np.ndarray) -> None:
        """Candidates among ``holders`` (they have the phrase's tokens) must not hold its words."""
        self._excluded.append((phrase.test(), self._mark(holders)))

    def __bool__(self) -> bool:
        return bool(self._required or self._excluded)

    def passing(self, docs: np.ndarray) -> np.ndarray:
        """Per document of ``docs``: whether it passes every check (each text read once)."""
        listed = docs.tolist()
        fresh = [doc for doc in dict.fromkeys(listed) if doc not in self._known and self._pending[doc]]
        for doc, text in zip(fresh, self._docs.texts(fresh)):
            self._known[doc] = all(test(text) for test in self._required) and not any(
                suspects[doc] and test(text) for test, suspects in self._excluded)
        known = self._known
        return np.fromiter((known.get(doc, True) for doc in listed), np.bool_, len(listed))

    def settle(self, cand: np.ndarray) -> np.ndarray | None:
        """Per candidate: whether it passes, when few enough need a check to check them all
        now; None when they are to be checked as the ranking reaches them."""
        if np.count_nonzero(self._pending[cand]) > EXACT_CHECKS:
            return None
        return self.passing(cand)

    def total(self, cand: np.ndarray, seen: np.ndarray, passed: int) -> Total:
        """The passing count among ``cand``, of which ``seen`` (indices into it) were checked
        and ``passed`` of those passed: exact when all were seen, else estimated from a
        sample of all of them. The sample depends only on the candidates, not on how far a
        page's checks went, so every page of a query states the same total."""
        n = cand.shape[0]
        if seen.shape[0] >= n:
            return Total(passed)
        if n <= ESTIMATE_SAMPLE:  # the sample would be all of them: count them
            return Total(int(np.count_nonzero(self.passing(cand))))
        picks = np.sort(np.random.default_rng(n).choice(n, ESTIMATE_SAMPLE, replace=False))
        share = float(np.count_nonzero(self.passing(cand[picks]))) / ESTIMATE_SAMPLE
        return Total(max(passed, round_estimate(share * n)), exact=False)


def round_estimate(value: float) -> int:
    """An estimate to three significant figures (12,345.6 → 12,300): no false precision."""
    n = round(value)
    step = 10 ** max(0, len(str(n)) - 3)
    return round(n / step) * step
