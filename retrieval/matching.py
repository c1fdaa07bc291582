"""Does one post match a query? (For subscriptions: new posts are tested one by one.)"""

from __future__ import annotations

from functools import cached_property

from .docstore import label_key
from .post import Post
from .query import Query
from .phrases import compact, contains_phrase, text_of
from .tokenizer import Tokenizer


class PostMatcher:
    """Tests queries against one post; its tokens and text are computed once."""

    def __init__(self, post: Post, tokenizer: Tokenizer) -> None:
        self.post, self.tokenizer = post, tokenizer

    @cached_property
    def _tokens(self) -> frozenset[str]:
        return frozenset(self.tokenizer.tokenize(self.post.title + "\n" + self.post.body))

    @cached_property
    def _text(self) -> str:
        return text_of(self.post.title, self.post.body)

    def _contains(self, words: str) -> bool:
        tokens = self.tokenizer.tokenize(words)
        if not tokens or not self._tokens.issuperset(tokens):
            return False
        target = compact(words)
        return (len(tokens) == 1 and tokens[0] == target) or contains_phrase(self._text, target)

    def _has_all_tokens(self, word: str) -> bool:
        tokens = self.tokenizer.tokenize(word)
        return bool(tokens) and self._tokens.issuperset(tokens)

    def matches(self, query: Query) -> bool:
        """True when the post passes every filter of ``query`` and contains every word and
        phrase in it (words: all their tokens; phrases: contiguously) and no excluded word."""
        post = self.post
        if not query.dates.unbounded and (post.date is None or post.date not in query.dates):
            return False
        for wanted, have in ((query.tags, post.tags), (query.categories, post.categories)):
            keys = {label_key(v) for v in have}
            if any(label_key(w) not in keys for w in wanted):
                return False
        if not all(self._has_all_tokens(w) for w in query.words):
            return False
        if not all(self._contains(p) for p in query.phrases):
            return False
        return not any(self._contains(w) for w in query.excluded)
