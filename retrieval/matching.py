"""Does one post match a query? (For subscriptions: new posts are tested one by one.)"""

from __future__ import annotations

from functools import cached_property

from .docstore import label_key
from .phrases import Phrase, text_of
from .post import Post
from .query import Query
from .tokenizer import Tokenizer


class PostMatcher:
    """Tests queries against one post; its tokens and text are computed once."""

    def __init__(self, post: Post, tokenizer: Tokenizer) -> None:
        self.post, self.tokenizer = post, tokenizer

    @cached_property
    def _tokens(self) -> frozenset[str]:
        return frozenset(self.tokenizer.tokenize(self.post.title + "\n" + self.post.searchable_body))

    @cached_property
    def _text(self) -> str:
        return text_of(self.post.title, self.post.searchable_body)

    def _has_tokens(self, phrase: Phrase | None) -> bool:
        return phrase is not None and self._tokens.issuperset(phrase.tokens)

    def _contains(self, words: str) -> bool:
        phrase = Phrase.of(words, self.tokenizer)
        return self._has_tokens(phrase) and phrase.in_text(self._text)  # type: ignore[union-attr]

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
        if not all(self._has_tokens(Phrase.of(w, self.tokenizer)) for w in query.words):
            return False
        if not all(self._contains(p) for p in query.phrases):
            return False
        return not any(self._contains(w) for w in query.excluded)
