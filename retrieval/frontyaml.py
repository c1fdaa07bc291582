"""A fast path for the front matter nearly every post has, with YAML itself for the rest.

Hexo front matter is almost always a flat mapping: ``key: value`` lines whose values are
quoted or plain one-line scalars, and lists of such scalars (``tags:`` then ``- 温家宝``).
PyYAML's C parser reads that quickly, but its constructors are Python: about 70 µs a post,
a seventh of a worker's whole time per post in a build. :func:`simple_mapping` reads exactly
that shape and nothing else, and gives each scalar the type YAML's own resolver gives it
(so ``date: 2019-11-01 10:00:00`` is a datetime, ``no: x`` has the key False, ``urlname:
0123`` is a number); anything else, a comment, a flow collection, an escape, a block scalar,
a nested mapping, returns None and the caller asks YAML. ``tests/test_loader.py`` checks
the two agree on generated front matter.
"""

from __future__ import annotations

import functools
import re
from datetime import datetime
from typing import Any, Callable

import yaml
from yaml.nodes import ScalarNode

from .native import native

#: ``key: value`` (value possibly empty) at the start of a line.
_KEY_LINE = re.compile(r"([^\s#'\"\[\]{},&*!|>%@`?:-][^\s:#]*):(?:[ ]+(.*))?")
#: ``- value`` of a block sequence, indented or not.
_ITEM_LINE = re.compile(r"( *)- (.+)")
_QUOTED = re.compile(r"\"([^\"\\]*)\"|'([^']*)'")
#: Characters a plain scalar cannot start with: YAML's indicators.
_INDICATORS = frozenset("-?:,[]{}#&*!|>'\"%@`")
#: What starts a comment inside a plain scalar.
_SPACE_HASH = re.compile(r"\s#")
#: The usual post date, ``2019-11-01 10:00:00``, which YAML reads as a timestamp: its resolver
#: and constructor took 4.8 µs a post, :meth:`datetime.fromisoformat` takes 0.3.
_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")
#: Its length: every other plain scalar, each key among them, is told apart by that without the
#: pattern (a news post's front matter: 6.2 µs instead of 6.8).
_DATETIME_LENGTH = len("2019-11-01 10:00:00")
#: A character YAML does not allow (:data:`yaml.reader.Reader.NON_PRINTABLE`), or one that the
#: fast path leaves to it: a tab, a line break other than ``\n``, a byte-order mark.
_UNUSUAL = re.compile("[^\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]")
_STR = "tag:yaml.org,2002:str"
#: Plain scalars whose YAML value :class:`_Scalars` keeps (a few hundred kilobytes at most).
KNOWN_SCALARS = 4096
_SIMPLE_TAGS = {f"tag:yaml.org,2002:{kind}" for kind in ("str", "int", "float", "bool", "null", "timestamp")}


#: A scalar as :func:`front_lines` gives it: (quoted, text). A quoted scalar's text is its value;
#: a plain one's goes to YAML's resolver.
Scalar = tuple[bool, str]


class _Scalars:
    """YAML's resolver and constructors, as a loader class has them (one instance, reused)."""

    def __init__(self, loader: type) -> None:
        self._resolver = yaml.resolver.Resolver()
        self._constructors: dict[str, Callable[[Any, ScalarNode], Any]] = loader.yaml_constructors
        self._self = yaml.constructor.SafeConstructor()
        self._known: dict[str, tuple[bool, Any]] = {}
        # (whether the loader makes of such a date what fromisoformat does: a custom one may not)
        self._iso_dates = self._resolve("2000-01-02 03:04:05") == (True, datetime(2000, 1, 2, 3, 4, 5))

    def plain(self, text: str) -> tuple[bool, Any]:
        """(True, value) for a plain scalar of a simple type; (False, None) otherwise. Keys and
        most tags and categories recur from post to post, and every value is immutable (text,
        number, date, None), so answers are kept (:data:`KNOWN_SCALARS` at most), but for
        the usual post date, a new one a post (see :data:`_DATETIME`)."""
        if self._iso_dates and len(text) == _DATETIME_LENGTH and _DATETIME.fullmatch(text):
            try:
                return True, datetime.fromisoformat(text)
            except ValueError:  # (no such day or time: YAML keeps the text)
                pass
        known = self._known.get(text)
        if known is None:
            if len(self._known) >= KNOWN_SCALARS:
                self._known.clear()
            known = self._known[text] = self._resolve(text)
        return known

    def value(self, scalar: Scalar) -> tuple[bool, Any]:
        """(True, value) of a :data:`Scalar` of a simple type; (False, None) otherwise."""
        quoted, text = scalar
        return (True, text) if quoted else self.plain(text)

    def _resolve(self, text: str) -> tuple[bool, Any]:
        tag = self._resolver.resolve(ScalarNode, text, (True, False))
        if tag == _STR:
            return True, text
        if tag not in _SIMPLE_TAGS:
            return False, None
        return True, self._constructors[tag](self._self, ScalarNode(tag, text))


def _plain(text: str) -> bool:
    """Whether ``text`` (one line, trailing spaces gone) is a plain scalar that cannot end early,
    hold a comment or start an indicator. (String tests: the pattern it was took 0.9 µs for a
    date and 1.5 for a 32-character id, each character tried against two lookarounds.)"""
    return (text != "" and text[0] not in _INDICATORS and not text[0].isspace() and text[-1] != ":"
            and not text[-1].isspace() and ": " not in text and not ("#" in text and _SPACE_HASH.search(text)))


def _scalar_text(text: str) -> Scalar | None:
    """A value's text (one line) as a :data:`Scalar`; None unless it is quoted simply (no escape,
    no inner quote) or :func:`_plain`."""
    text = text.rstrip(" ")
    quoted = _QUOTED.fullmatch(text)
    if quoted:
        return True, quoted[1] if quoted[1] is not None else quoted[2]
    return (False, text) if _plain(text) else None


def front_lines(raw: str) -> list[tuple[str, Scalar | list[Scalar]]] | None:
    """The simple mapping's shape (see the module docstring) before YAML's resolver: each key's
    text and its value, a :data:`Scalar` or a list of them; None if ``raw`` is not of that
    shape. (The C extension's ``front_lines`` is the fast twin: 1.1 µs for a news post's front
    matter instead of 9.3, which made :func:`simple_mapping` 4.8 µs instead of 15.9.)"""
    if _UNUSUAL.search(raw):
        return None
    entries: list[tuple[str, Scalar | list[Scalar]]] = []
    items: list[Scalar] | None = None  # the list the last empty ``key:`` began
    indent: int | None = None
    for line in raw.split("\n"):
        if not line.strip(" "):  # (YAML's white space is the space and the tab alone, not \xa0)
            continue
        item = _ITEM_LINE.fullmatch(line)
        if item:
            if items is None or (indent is not None and len(item[1]) != indent):
                return None
            indent = len(item[1])
            scalar = _scalar_text(item[2])
            if scalar is None:
                return None
            items.append(scalar)
            continue
        found = _KEY_LINE.fullmatch(line)
        if not found:
            return None
        value = found[2]
        if value is None or not value.strip(" "):
            items, indent = [], None
            entries.append((found[1], items))
            continue
        items = None
        scalar = _scalar_text(value)
        if scalar is None:
            return None
        entries.append((found[1], scalar))
    return entries


def simple_mapping(raw: str, loader: type) -> dict | None:
    """The mapping ``raw`` holds if it is simple (see the module docstring), else None.
    ``loader``: the YAML loader class whose constructors the scalars get (its timestamps)."""
    entries = native.front_lines(raw) if native is not None else front_lines(raw)
    if entries is None:
        return None
    scalars = _scalars(loader)
    meta: dict = {}
    for key_text, value in entries:
        ok, key = scalars.plain(key_text)
        if not ok or isinstance(key, (list, dict)) or key in meta:
            return None
        if isinstance(value, list):
            items = []
            for scalar in value:
                ok, item = scalars.value(scalar)
                if not ok:
                    return None
                items.append(item)
            meta[key] = items or None
        else:
            ok, meta[key] = scalars.value(value)
            if not ok:
                return None
    return meta


@functools.cache
def _scalars(loader: type) -> _Scalars:
    return _Scalars(loader)
