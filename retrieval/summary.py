"""Extractive summaries: the sentences that best cover the query, with the matched words marked."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Iterable, Mapping

if TYPE_CHECKING:
    from .post import Post

from .tokenizer import fold_chars

SUMMARY_CHARS = 120
#: A sentence: up to and including its end mark, or a line's run without one. (Matching the
#: sentences is three times as fast as splitting between them, where a look-behind is tried
#: at every character.)
_SENTENCE = re.compile(r"[^。！？；!?;\n]*[。！？；!?;]|[^。！？；!?;\n]+")
_DATELINE = re.compile(
    r"^[^。！？\n]{0,40}?(?:讯|电)\s*[（(][^）)]{0,80}[）)]\s*[：:]?"
    r"|^[^。！？\n，,]{0,30}?(?:讯|电|消息)\s*[：:]"
    r"|^[（(](?:本报)?(?:记者|通讯员)[^）)]{0,80}[）)]"
)
_ASIDE = re.compile(r"^[（(][^（）()]*[）)]$")
_LATIN = re.compile(r"[a-z0-9]")


class Summary(str):
    """Summary text (it is a ``str``) with ``spans``: (start, end) offsets of the matched words."""

    spans: tuple[tuple[int, int], ...]

    def __new__(cls, text: str, spans: Iterable[tuple[int, int]] = ()) -> "Summary":
        obj = super().__new__(cls, text)
        obj.spans = tuple(spans)
        return obj

    def segments(self) -> list[tuple[str, bool]]:
        """The text cut into (piece, is_match) runs, for renderers."""
        out: list[tuple[str, bool]] = []
        pos = 0
        for start, end in self.spans:
            if start > pos:
                out.append((self[pos:start], False))
            out.append((self[start:end], True))
            pos = end
        if pos < len(self):
            out.append((self[pos:], False))
        return out


def split_sentences(text: str) -> list[str]:
    """Sentences at 。！？； (and their ASCII forms) and line breaks, punctuation kept."""
    return [s.strip() for s in _SENTENCE.findall(text) if s.strip()]


def strip_dateline(text: str) -> str:
    """Drop a leading ``南开新闻网讯（记者 …）`` / ``新华社北京11月13日电（记者…）`` / ``…消息：``."""
    return _DATELINE.sub("", text.lstrip(), count=1).lstrip()


def match_spans(text: str, terms: Iterable[str]) -> list[tuple[int, int]]:
    """Where the (normalized) terms occur in ``text``; Latin/digit terms only as whole words."""
    folded = fold_chars(text)
    spans: list[tuple[int, int]] = []
    for term in {t for t in terms if t}:
        start = folded.find(term)
        while start != -1:
            end = start + len(term)
            latin_edge = _LATIN.match(term[0]) or _LATIN.match(term[-1])
            bounded = not latin_edge or (
                (start == 0 or not _LATIN.match(folded[start - 1]))
                and (end == len(folded) or not _LATIN.match(folded[end]))
            )
            if bounded:
                spans.append((start, end))
            start = folded.find(term, start + 1)
    spans.sort()
    merged: list[tuple[int, int]] = []
    for s, e in spans:
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


def _trim(text: str, max_chars: int, focus: int = 0) -> str:
    if len(text) <= max_chars:
        return text
    start = max(0, min(focus - max_chars // 4, len(text) - max_chars))
    piece = text[start : start + max_chars - 1 - (start > 0)]
    return ("…" if start > 0 else "") + piece + "…"


def _lead_sentences(body: str) -> list[str]:
    sentences = split_sentences(strip_dateline(body))
    return [s for s in sentences if not _ASIDE.match(s)] or sentences


NO_SUMMARY = Summary("")


def lead_summary(body: str, max_chars: int = SUMMARY_CHARS, terms: Iterable[str] = ()) -> Summary:
    """The post's opening sentences, datelines and asides skipped (for listings and pushes);
    none for ``max_chars`` of 0 (callers that only want the ranking pay nothing for summaries)."""
    if max_chars <= 0:
        return NO_SUMMARY
    text = ""
    for sentence in _lead_sentences(body):
        if text and len(text) + len(sentence) > max_chars:
            break
        text += sentence
    text = _trim(text, max_chars)
    return Summary(text, match_spans(text, terms))


def post_summary(post: "Post", max_chars: int = SUMMARY_CHARS) -> Summary:
    """A post's lead: its author's ``description`` where it has one, else its opening sentences."""
    return lead_summary(post.description or post.body, max_chars)


def query_summary(
    body: str, terms: list[str], weights: Mapping[str, float], max_chars: int = SUMMARY_CHARS, sentences: int = 2
) -> Summary:
    """Up to ``sentences`` sentences that best cover ``terms`` (weighted by idf), in reading
    order, trimmed to about ``max_chars`` around the first match; the lead when nothing matches;
    none for ``max_chars`` of 0."""
    if max_chars <= 0:
        return NO_SUMMARY
    candidates = _lead_sentences(body)
    wanted = {t for t in terms if t}
    covered: list[tuple[float, int, set[str]]] = []
    folded_all = fold_chars("\n".join(candidates))  # one pass: same length, so sentences are slices
    pos = 0
    for i, sentence in enumerate(candidates):
        folded = folded_all[pos : pos + len(sentence)]
        pos += len(sentence) + 1
        found = {t for t in wanted if t in folded}
        if found:
            covered.append((sum(weights.get(t, 1.0) for t in found), i, found))
    if not covered:
        return lead_summary(body, max_chars, terms)
    covered.sort(key=lambda c: (-c[0], c[1]))
    chosen = [covered[0]]
    seen = set(covered[0][2])
    for score, i, found in covered[1:]:
        if len(chosen) >= sentences:
            break
        fits = sum(len(candidates[c[1]]) for c in chosen) + len(candidates[i]) <= max_chars
        if found - seen or fits:
            chosen.append((score, i, found))
            seen |= found
    parts = [candidates[i] for _, i, _ in sorted(chosen, key=lambda c: c[1])]
    text = "".join(parts) if len(parts) == 1 else " … ".join(parts)
    spans = match_spans(text, wanted)
    text = _trim(text, max_chars, spans[0][0] if spans else 0)
    return Summary(text, match_spans(text, wanted))
