"""Phrases: text compacted the way phrases are compared, and "does this text contain these
words" — the one rule that search filters, exclusions and subscriptions all apply."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from .native import native
from .tokenizer import Tokenizer, fold_chars, fold_codes

_SPACE_BY_WIDE = re.compile(r" (?=[^\x00-\x7f])|(?<=[^\x00-\x7f]) ")
_LATIN_EDGE = re.compile(r"[a-z0-9]")


def compact(text: str) -> str:
    """Text as phrases are compared: folded, single spaces, none beside CJK characters."""
    if native is not None:
        return native.compact(text, fold_codes())
    return compact_general(text)


def compact_general(text: str) -> str:
    """:func:`compact` in Python (the reference, and the way without the C extension)."""
    return _SPACE_BY_WIDE.sub("", " ".join(fold_chars(text).split()))


def contains_phrase(haystack: str, phrase: str) -> bool:
    """Whether compacted ``phrase`` occurs in compacted ``haystack`` (Latin ends on word
    boundaries). An empty phrase occurs nowhere: it has nothing to look for."""
    if not phrase:
        return False
    start = haystack.find(phrase)
    while start != -1:
        end = start + len(phrase)
        left_ok = not _LATIN_EDGE.match(phrase[0]) or start == 0 or not _LATIN_EDGE.match(haystack[start - 1])
        right_ok = not _LATIN_EDGE.match(phrase[-1]) or end == len(haystack) or not _LATIN_EDGE.match(haystack[end])
        if left_ok and right_ok:
            return True
        start = haystack.find(phrase, start + 1)
    return False


def text_of(title: str, body: str) -> str:
    """The compacted text of a post, as phrases are looked for in it."""
    return compact(title + "\n" + body)


def phrase_test(phrase: str) -> Callable[[bytes], bool]:
    """:func:`contains_phrase` for UTF-8 texts, set up once for many texts: a plain byte
    search, decoding only when the phrase has Latin ends whose word boundaries need checking."""
    target = phrase.encode("utf-8")
    if not phrase:
        return lambda text: False
    if _LATIN_EDGE.match(phrase[0]) or _LATIN_EDGE.match(phrase[-1]):
        return lambda text: target in text and contains_phrase(text.decode("utf-8"), phrase)
    return lambda text: target in text


@dataclass(frozen=True, slots=True)
class Phrase:
    """Words that must occur together: a text contains them when it has every one of their
    ``tokens`` and, unless they are one whole token, the compacted ``target`` contiguously."""

    tokens: tuple[str, ...]
    target: str

    @classmethod
    def of(cls, words: str, tokenizer: Tokenizer) -> "Phrase | None":
        """The phrase for ``words``; None when they hold nothing searchable (punctuation, stop
        words, or characters such as ``½`` that fold to no word character)."""
        target = compact(words)
        tokens = tuple(tokenizer.tokenize(words)) if target else ()
        return cls(tokens, target) if tokens else None

    @property
    def needs_text(self) -> bool:
        """False when having the tokens is enough (a single token that is the whole phrase)."""
        return not (len(self.tokens) == 1 and self.tokens[0] == self.target)

    def test(self) -> Callable[[bytes], bool]:
        """:meth:`in_text` for UTF-8 texts, set up once for many texts."""
        return phrase_test(self.target) if self.needs_text else lambda text: True

    def in_text(self, text: str) -> bool:
        """Whether a compacted text that has all the tokens holds the phrase (:meth:`test`
        does the same for many stored UTF-8 texts)."""
        return not self.needs_text or contains_phrase(text, self.target)
