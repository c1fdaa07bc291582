"""From Hexo Markdown to the plain text that is indexed and summarized.

Hexo's own markup goes too: tag plugins (``{% blockquote %}…{% endblockquote %}`` and
``{% pullquote %}`` keep their quoted text; ``{% codeblock %}`` and fenced code become the
post's *code*, searchable but never shown in a summary; one-line tags such as ``{% asset_img
… %}`` or ``{% post_link … %}`` are dropped), the ``<!-- more -->`` marker and raw HTML."""

from __future__ import annotations

import functools
import html
import re
from functools import reduce
from operator import or_

from .native import native

# The link Hexo archives put at the end of a post: [转入文章首发地址](http://…)
_SOURCE_LINK = re.compile(
    r"\[\s*(?:转入文章首发地址|文章首发地址|原文链接|原文地址|阅读原文|原文|source)\s*\]\(\s*<?([^)\s>]+)>?[^)]*\)",
    re.IGNORECASE,
)
_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_REF_LINK_DEF = re.compile(r"^\s*\[[^\]]+\]:\s*\S+.*$", re.MULTILINE)
_AUTOLINK = re.compile(r"<(?:https?|ftp)://[^>]+>")
_BARE_URL = re.compile(r"(?:https?|ftp)://\S+")
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_HTML_BLOCK = re.compile(r"<(script|style)\b.*?</\1\s*>", re.DOTALL | re.IGNORECASE)
_HTML_TAG = re.compile(r"</?[A-Za-z][^>]*>")
_CODE_FENCE = re.compile(r"^\s*(```|~~~).*$", re.MULTILINE)
#: A fenced block (its fence, info string and closing fence) or a Hexo code tag.
_CODE_BLOCK = re.compile(
    r"^[ \t]*(?P<fence>`{3,}|~{3,})[^\n]*\n(?P<fenced>.*?)^[ \t]*(?P=fence)[ \t]*$"
    r"|\{%-?\s*(?P<tag>codeblock|code|include_code|raw)\b[^%]*%\}(?P<tagged>.*?)\{%-?\s*end(?P=tag)\s*-?%\}",
    re.MULTILINE | re.DOTALL,
)
#: What a match of :data:`_CODE_BLOCK` cannot do without: scanning a post that has none for the
#: pattern took 11.5 µs, as long as all of :func:`plain_text`'s passes (looking: 2 µs).
_CODE_NEEDLES = ("```", "~~~", "{%")
#: Any other tag plugin marker (opening, closing or single), removed; text between stays.
_TAG_PLUGIN = re.compile(r"\{%-?.*?-?%\}", re.DOTALL)
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s*", re.MULTILINE)
_QUOTE = re.compile(r"^\s{0,3}>\s?", re.MULTILINE)
_LIST_MARK = re.compile(r"^\s*(?:[-*+]|\d+\.)\s+", re.MULTILINE)
_RULE = re.compile(r"^\s*(?:[-*_]\s*){3,}$", re.MULTILINE)
_EMPHASIS = re.compile(r"(\*{1,3}|_{2,3}|~~)(?=\S)(.+?)(?<=\S)\1")
_INLINE_CODE = re.compile(r"`([^`]*)`")
#: The space characters whose runs become one space (ideographic and no-break spaces among them).
_SPACE_CHARS = " \t\u3000\xa0"
_SPACES = re.compile(f"[{_SPACE_CHARS}]+")

_SITE_PREFIX = re.compile(r"^\s*[^\s>]{1,40}?->\s*")
#: `` | nankai.info``, `` | 新华网``: a site name, one run of characters without spaces.
_SITE_SUFFIX = re.compile(r"\s+\|\s+[^|\s]{1,60}$")


def source_url(markdown: str) -> str | None:
    """The original article's address from the closing ``[转入文章首发地址](url)`` link."""
    found = _SOURCE_LINK.findall(markdown)
    return found[-1] if found else None


def split_code(markdown: str) -> tuple[str, str]:
    """The Markdown without its code blocks, and the code (one block a line group); ``{% raw %}``
    blocks are Hexo's way to show markup as text, so their content stays in the text."""
    for needle in _CODE_NEEDLES:
        if needle in markdown:
            break
    else:  # none: nearly every news post
        return markdown, ""
    code: list[str] = []

    def take(m: re.Match) -> str:
        if m["tag"] == "raw":
            return m["tagged"]
        code.append((m["fenced"] if m["fence"] else m["tagged"]).strip("\n"))
        return "\n"

    text = _CODE_BLOCK.sub(take, markdown)
    return text, "\n".join(c for c in code if c.strip())


_ASCII = re.compile(r"[\x00-\x7f]")


def ascii_mask(text: str) -> int:
    """Bit ``i`` set when ``chr(i)`` (ASCII) occurs in ``text`` (the C extension's
    ``ascii_mask`` is the fast twin: 1.0 µs for a news post)."""
    if native is not None:
        return native.ascii_mask(text)
    return reduce(or_, (1 << ord(ch) for ch in set(_ASCII.findall(text))), 0)


def _needles(*needles: str) -> tuple[tuple[str, int], ...]:
    """Each needle with the :func:`ascii_mask` of its characters."""
    return tuple((needle, ascii_mask(needle)) for needle in needles)


#: plain_text's passes in order, each with the strings its pattern cannot match without (a
#: post of plain prose skips them: the passes were a fifth of a build worker's time), and the
#: characters of each (see :func:`plain_text`).
_PASSES: tuple[tuple[re.Pattern, str, tuple[tuple[str, int], ...]], ...] = (
    (_SOURCE_LINK, "", _needles("](")),
    (_TAG_PLUGIN, "", _needles("{%")),
    (_HTML_COMMENT, "", _needles("<!--")),
    (_HTML_BLOCK, "", _needles("<")),
    (_IMAGE, "", _needles("![")),
    (_LINK, r"\1", _needles("](")),
    (_REF_LINK_DEF, "", _needles("]:")),
    (_AUTOLINK, "", _needles("://")),
    (_BARE_URL, "", _needles("://")),
    (_HTML_TAG, "", _needles("<")),
    (_CODE_FENCE, "", _needles("```", "~~~")),
    (_HEADING, "", _needles("#")),
    (_QUOTE, "", _needles(">")),
    (_RULE, "", _needles("-", "*", "_")),
    (_LIST_MARK, "", _needles("-", "*", "+", ".")),
    (_INLINE_CODE, r"\1", _needles("`")),
    (_EMPHASIS, r"\2", _needles("*", "__", "~~")),
    (_EMPHASIS, r"\2", _needles("*", "__", "~~")),  # nested emphasis: ***a** b*
)


#: Every character of the passes' needles, as an :func:`ascii_mask`: all that the choice of
#: passes depends on.
_NEEDLE_CHARS = reduce(or_, (chars for _, _, needs in _PASSES for _, chars in needs))
Pass = tuple[re.Pattern, str, tuple[str, ...]]


@functools.lru_cache(maxsize=256)
def _passes_for(present: int) -> tuple[Pass, ...]:
    """The passes, with the needles of each, whose needles' characters are all in ``present``
    (an :func:`ascii_mask` of :data:`_NEEDLE_CHARS`; news posts have a handful of these)."""
    return tuple((pattern, replacement, needles) for pattern, replacement, needs in _PASSES
                 if (needles := tuple(needle for needle, chars in needs if present & chars == chars)))


def plain_text(markdown: str) -> str:
    """Markdown body to plain text: images, URLs, tags, tag plugins and emphasis marks removed,
    link text kept (code blocks are expected to be taken out first: :func:`split_code`)."""
    text = markdown
    # A pass only takes text out (or keeps a part of it): a needle whose characters the
    # Markdown lacks is in no text made of it. Looking for each needle in a news post took 10
    # µs; most need not be looked for, and the passes that might apply are chosen once per
    # set of characters (going through all 18 for each post took 11.4 µs a news post, this
    # 9.7, the same passes applied).
    for pattern, replacement, needles in _passes_for(ascii_mask(markdown) & _NEEDLE_CHARS):
        for needle in needles:
            if needle in text:
                text = pattern.sub(replacement, text)
                break
    return tidy_lines(html.unescape(text))


def tidy_lines(text: str) -> str:
    """The non-empty lines of ``text``, stripped, each run of spaces in them one space (the
    C extension's ``tidy_lines`` is the fast twin: 1 µs for a post instead of 8.5)."""
    if native is not None:
        return native.tidy_lines(text, _SPACE_CHARS)
    return "\n".join(filter(None, [line.strip() for line in _SPACES.sub(" ", text).splitlines()]))


def display_title(raw_title: str) -> str:
    """``南开大学->【…】标题 | nankai.info`` becomes ``【…】标题``."""
    title = _SITE_SUFFIX.sub("", raw_title.strip())
    title = _SITE_PREFIX.sub("", title, count=1)
    return _SPACES.sub(" ", title).strip() or raw_title.strip()
