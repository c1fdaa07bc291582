"""Phrases: text compacted the way phrases are compared, and contiguous-occurrence tests."""

from __future__ import annotations

import re

from .tokenizer import fold_chars

_SPACE_BY_WIDE = re.compile(r" (?=[^\x00-\x7f])|(?<=[^\x00-\x7f]) ")
_LATIN_EDGE = re.compile(r"[a-z0-9]")


def compact(text: str) -> str:
    """Text as phrases are compared: folded, single spaces, none beside CJK characters."""
    return _SPACE_BY_WIDE.sub("", " ".join(fold_chars(text).split()))


def contains_phrase(haystack: str, phrase: str) -> bool:
    """Whether compacted ``phrase`` occurs in compacted ``haystack`` (Latin ends on word boundaries)."""
    if not phrase:
        return True
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


def contains_phrase_bytes(haystack: bytes, phrase: str) -> bool:
    """:func:`contains_phrase` on UTF-8 bytes: a plain byte search, decoding only when the
    phrase has Latin ends whose word boundaries need checking."""
    if phrase.encode("utf-8") not in haystack:
        return False
    if not (_LATIN_EDGE.match(phrase[0]) or _LATIN_EDGE.match(phrase[-1])):
        return True
    return contains_phrase(haystack.decode("utf-8"), phrase)
