"""Tokenization shared by indexing, queries, phrases and summaries.

Text is NFKC-normalized, lower-cased and folded from traditional to simplified
characters (OpenCC's ``t2s`` character table, so ``習近平 主題教育`` finds ``习近平 主题教育``);
every character that is neither a letter, a digit nor a CJK ideograph becomes a space;
the rest is segmented by jieba in search mode (so ``南开大学`` also yields ``南开`` and
``大学``), and stop words are dropped. Numbers are kept. The folding is character by
character, the same for posts, queries, phrases and highlights, so it never moves an offset.

rjieba (the jieba-rs binding) is used as the segmenter when it is installed and
no user dictionary is configured: on the normalized text it yields exactly
jieba's tokens (``tests/test_tokenizer.py`` proves it) at about 15x the speed.
jieba is the fallback and the reference.

The per-character loops (normalizing, folding) and the token filter run in C when the
optional extension ``retrieval._native`` is built (:mod:`retrieval.native`); the Python here
is the reference and the fallback, and the tests hold the two to each other.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
import unicodedata
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from .native import native

log = logging.getLogger(__name__)

#: Bumped whenever normalization or filtering changes, so persisted indexes rebuild.
TOKENIZER_VERSION = 2

_NON_WORD = re.compile(r"[\W_]+")


class Segmenter(Protocol):
    """What the tokenizer needs of a jieba-compatible segmenter."""

    name: str

    def cut_for_search(self, text: str) -> list[str]: ...

    def cut(self, text: str) -> list[str]: ...


class JiebaSegmenter:
    """The reference segmenter: jieba itself, optionally with a user dictionary."""

    name = "jieba"

    def __init__(self, user_dict: Path | None = None) -> None:
        import jieba

        jieba.setLogLevel(logging.WARNING)
        self._jieba = jieba.Tokenizer()
        if user_dict is not None:
            self._jieba.load_userdict(str(user_dict))

    def cut_for_search(self, text: str) -> list[str]:
        return list(self._jieba.cut_for_search(text))

    def cut(self, text: str) -> list[str]:
        return list(self._jieba.cut(text))


class RjiebaSegmenter:
    """jieba-rs through rjieba: same tokens as jieba on normalized text, much faster."""

    name = "rjieba"

    def __init__(self) -> None:
        import rjieba

        self._jieba = rjieba.Jieba()

    def cut_for_search(self, text: str) -> list[str]:
        return self._jieba.cut_for_search(text)

    def cut(self, text: str) -> list[str]:
        return self._jieba.cut(text, True)


def default_segmenter(user_dict: Path | None) -> Segmenter:
    """rjieba when available and no user dictionary is set; jieba otherwise."""
    if user_dict is None:
        try:
            return RjiebaSegmenter()
        except ImportError:
            log.info("rjieba is not installed; tokenizing with jieba")
    else:
        log.info("user dictionary %s set; tokenizing with jieba", user_dict)
    return JiebaSegmenter(user_dict)


@functools.cache
def simplified_table() -> dict[int, str]:
    """Traditional → simplified, character by character (OpenCC ``t2s`` applied to each CJK
    ideograph of the BMP alone: no phrase context, so a character always folds the same way)."""
    import opencc

    convert = opencc.OpenCC("t2s").convert
    table: dict[int, str] = {}
    for block in ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF)):
        for code in range(block[0], block[1] + 1):
            folded = convert(chr(code))
            if len(folded) == 1 and folded != chr(code):
                table[code] = folded
    return table


@functools.cache
def _char_table(fold: Callable[[str], str]) -> list[str]:
    """``fold`` of every BMP character, as a list (the fastest table ``str.translate`` takes;
    characters past its end are left as they are)."""
    return [fold(chr(code)) if not 0xD800 <= code < 0xE000 else chr(code) for code in range(0x10000)]


def _nfkc_char(ch: str) -> str:
    return unicodedata.normalize("NFKC", ch)


def _simplified_char(ch: str) -> str:
    return simplified_table().get(ord(ch), ch)


def normalize(text: str) -> str:
    """NFKC, lower case, simplified characters, and every non-word character turned into a space.

    With the C extension, a text whose every character normalizes the same whatever its
    neighbours (nearly every text) is looked up character by character in one pass
    (:func:`_normalize_codes`); the rest take :func:`normalize_general`."""
    if native is not None:
        done = native.normalize(text, _normalize_codes())
        if done is not None:
            return done
    return normalize_general(text)


def normalize_general(text: str) -> str:
    """:func:`normalize` of any text (the reference).

    NFKC of a whole text is slow (60 µs for a short post). Replacing each character by its
    own NFKC leaves the text's compatibility decomposition, hence its NFKC, as it was; when the
    result is already in NFKC (nearly always: it is what full-width punctuation needs), that
    is the answer, and a quick check says so."""
    folded = text.translate(_char_table(_nfkc_char))
    if not unicodedata.is_normalized("NFKC", folded):
        folded = unicodedata.normalize("NFKC", folded)
    return _NON_WORD.sub(" ", folded.lower().translate(_char_table(_simplified_char)))


#: In :func:`_normalize_codes`: a character that :func:`normalize` may change differently
#: beside others (the C extension's ``DEPENDS``).
DEPENDS = 0


def _context_free(ch: str) -> bool:
    """Whether a character that NFKC leaves as it is stays so beside any others, and lower
    case makes the same of it anywhere: not a combining mark or Hangul jamo, which NFKC may
    compose with the character before (an over-approximation of the NFKC_QC=Maybe set), nor a
    capital sigma, whose lower case depends on the end of its word."""
    code = ord(ch)
    return (code < 0x10000 and not unicodedata.combining(ch) and not unicodedata.category(ch).startswith("M")
            and not 0x1100 <= code <= 0x11FF and ch != "\u03a3")


@functools.cache
def _normalize_codes() -> np.ndarray:
    """Per BMP character: what :func:`normalize` makes of it alone (a code point, or a space for
    a non-word character), where that holds beside any other such characters; ``DEPENDS``
    where it may not (a surrogate, a character NFKC expands, or one not :func:`_context_free`)."""
    nfkc, simplified = _char_table(_nfkc_char), _char_table(_simplified_char)
    codes = np.zeros(0x10000, np.uint32)
    for code in range(0x10000):
        n = nfkc[code]
        if 0xD800 <= code < 0xE000 or len(n) != 1 or not _context_free(n):
            continue
        low = n.lower()
        if len(low) != 1 or ord(low) > 0xFFFF:
            continue
        out = simplified[ord(low)]
        codes[code] = ord(" ") if _NON_WORD.fullmatch(out) else ord(out)
    return codes


def _fold_char(ch: str) -> str:
    n = unicodedata.normalize("NFKC", ch).lower()
    return simplified_table().get(ord(n), n) if len(n) == 1 and n.isalnum() else " "


@functools.cache
def _fold_table() -> list[str]:
    # A list indexed by code point is the fastest table str.translate accepts.
    return [_fold_char(chr(code)) for code in range(0x10000)]


@functools.cache
def fold_codes() -> np.ndarray:
    """:func:`_fold_table` as code points (each entry is one character)."""
    return np.fromiter(map(ord, _fold_table()), np.uint32, 0x10000)


#: From this length on, :func:`fold_chars` looks characters up in an array: ``str.translate``
#: takes about 27 ns a character outside ASCII, the array about 4 µs a call plus 3 ns a
#: character (a 775-character post folds in 6.4 µs instead of 21; they break even near 130).
FOLD_BY_ARRAY = 256


def fold_chars(text: str) -> str:
    """Character-by-character :func:`normalize`: same length as ``text``, so offsets carry
    over. (Characters beyond the BMP, rare CJK and emoji, are kept as they are.) The C
    extension looks each character up in :func:`fold_codes`; without it, Python does."""
    if native is not None:
        return native.fold(text, fold_codes())
    if len(text) < FOLD_BY_ARRAY:
        return text.translate(_fold_table())
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), np.uint32)
    table = fold_codes()
    if int(codes.max()) > 0xFFFF:
        folded = np.where(codes > 0xFFFF, codes, table[np.minimum(codes, 0xFFFF)])
    else:
        folded = table[codes]
    return folded.tobytes().decode("utf-32-le", "surrogatepass")


def filter_tokens(tokens: list[str], stopwords: frozenset[str]) -> list[str]:
    """The tokens that are index terms: neither whitespace nor stop words, in order."""
    if native is not None:
        return native.filter_tokens(tokens, stopwords)
    return [tok for tok in tokens if not tok.isspace() and tok not in stopwords]


def load_stopwords(path: Path | None = None) -> frozenset[str]:
    """Read a stop-word file (one word a line, ``#`` comments); the bundled list by default."""
    if path is None:
        raw = resources.files("retrieval").joinpath("stopwords.txt").read_text("utf-8")
    else:
        raw = path.read_text("utf-8")
    words = (line.strip() for line in raw.splitlines())
    return frozenset(normalize(w).strip() for w in words if w and not w.startswith("#"))


class Tokenizer:
    """Turns text into index terms; the same instance serves documents and queries."""

    def __init__(
        self,
        user_dict: Path | None = None,
        stopwords: frozenset[str] | None = None,
        segmenter: Segmenter | None = None,
    ) -> None:
        self.user_dict = user_dict if user_dict is not None and user_dict.is_file() else None
        if user_dict is not None and self.user_dict is None:
            log.info("user dictionary %s not found; using jieba's own dictionary", user_dict)
        self.stopwords = load_stopwords() if stopwords is None else stopwords
        self._segmenter = segmenter

    @property
    def segmenter(self) -> Segmenter:
        """The segmenter, created on first use (loading a dictionary takes a moment)."""
        if self._segmenter is None:
            self._segmenter = default_segmenter(self.user_dict)
        return self._segmenter

    def words(self, text: str) -> list[str]:
        """``text`` normalized and cut into words (jieba's precise mode: no overlaps), spaces
        and punctuation left out, stop words kept: for reading a query as a sentence."""
        return [w for w in self.segmenter.cut(normalize(text)) if w.strip()]

    def segments(self, text: str) -> list[str]:
        """The segmenter's tokens of ``text`` normalized, in reading order, before the filter:
        :meth:`tokenize` is :func:`filter_tokens` of them (a build's workers filter them as they
        count them)."""
        return self.segmenter.cut_for_search(normalize(text))

    def tokenize(self, text: str) -> list[str]:
        """Index terms of ``text`` in reading order (duplicates kept)."""
        return filter_tokens(self.segments(text), self.stopwords)

    @cached_property
    def fingerprint(self) -> str:
        """Identifies everything that changes the tokens: persisted indexes compare it."""
        h = hashlib.sha256()
        h.update(f"v{TOKENIZER_VERSION}\n".encode())
        h.update(json.dumps(sorted(simplified_table().items())).encode())
        h.update("\n".join(sorted(self.stopwords)).encode())
        if self.user_dict is not None:
            h.update(b"\nuserdict\n" + self.user_dict.read_bytes())
        return h.hexdigest()[:16]
