"""The query language: words, "phrases", -exclusions, date and tag/category filters — and
the same read as a question: dates written anywhere in the words (``2019年11月有哪些…``,
``上个月``, see :mod:`retrieval.when`), words that only ask dropped, recency noted (see
:mod:`retrieval.questions`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone, tzinfo
from typing import TYPE_CHECKING

from .dates import DateError, DateRange, looks_like_date, parse_date_range, parse_date_span
from .questions import is_question, read_words
from .when import find_dates

if TYPE_CHECKING:
    from .tokenizer import Tokenizer

MAX_QUERY_CHARS = 256
_UTC = timezone.utc  # /range's dates are only checked here; the query is parsed in the archive's zone

_TOKEN = re.compile(
    r"""(?P<neg>-?)
        (?:(?P<key>[A-Za-z]+):)?
        (?:"(?P<dq>[^"]*)"?|“(?P<cq>[^”]*)”?|「(?P<jq>[^」]*)」?|(?P<bare>\S+))""",
    re.VERBOSE,
)
_SINCE_KEYS = {"since", "from", "after"}
_UNTIL_KEYS = {"until", "to", "before"}
_TAG_KEYS = {"tag", "tags"}
_CAT_KEYS = {"cat", "category", "categories"}
_DATE_KEYS = {"date", "in", "on"}


class QueryError(ValueError):
    """A query that cannot be run. ``code`` is one of ``too_long``, ``bad_date``,
    ``empty_range``, ``range_usage``."""

    def __init__(self, code: str, value: str = "") -> None:
        messages = {
            "too_long": f"the query is longer than {MAX_QUERY_CHARS} characters",
            "bad_date": f"cannot understand the date {value!r}; try 2019-11-01, 2019-11 or 2019年11月",
            "empty_range": "the date range is empty: its start is after its end",
            "range_usage": "a range is FROM TO [QUERY] or SPAN [QUERY], e.g. 2019-11-01 2019-11-30",
        }
        super().__init__(messages.get(code, code))
        self.code = code
        self.value = value


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed query; ``text`` is what the user typed."""

    text: str
    words: tuple[str, ...] = ()
    phrases: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()
    dates: DateRange = field(default_factory=DateRange)
    tags: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    #: Newest first (最新, 最近, 近期…).
    recent: bool = False
    #: The dates depend on today (上个月, 昨天, 11月12日…): no lasting meaning.
    relative: bool = False
    #: The text asks something: the reply opens with an answer.
    question: bool = False
    #: Dates were read from the words themselves (the reply says how)…
    dates_in_words: bool = False
    #: …as these words; and the dates given as filters (since:, 2019-11…) alone.
    date_words: tuple[str, ...] = ()
    given_dates: DateRange = field(default_factory=DateRange)

    def relaxed(self) -> "Query":
        """The query without the dates read from its words, which become words again (for a
        question such as ``1903年发生了什么`` about a year, not posts of that year)."""
        return replace(self, words=self.words + self.date_words, dates=self.given_dates, dates_in_words=False,
                       date_words=(), relative=False)

    @property
    def has_terms(self) -> bool:
        """Whether anything is to be ranked (words or phrases)."""
        return bool(self.words or self.phrases)

    @property
    def has_filters(self) -> bool:
        return not self.dates.unbounded or bool(self.tags or self.categories or self.excluded)

    @property
    def is_empty(self) -> bool:
        return not self.has_terms and not self.has_filters and not self.recent

    @property
    def ranked_text(self) -> str:
        """Words and phrases, the text that is tokenized for ranking."""
        return " ".join(self.words + self.phrases)


def _date_filter(key: str, value: str, tz: tzinfo) -> DateRange:
    try:
        if key in _SINCE_KEYS:
            return DateRange(parse_date_span(value, tz).start, None)
        if key in _UNTIL_KEYS:
            return DateRange(None, parse_date_span(value, tz).end)
        return parse_date_range(value, tz)
    except DateError:
        raise QueryError("bad_date", f"{key}:{value}" if key else value) from None


def _dates_in(value: str, today: date, tz: tzinfo, spans: list[DateRange], texts: list[str]) -> tuple[list[str], bool]:
    """``value`` without the dates written in it (their spans go to ``spans``, their words to
    ``texts``), and whether one of them was relative to today."""
    found = find_dates(value, today, tz)
    rest, relative, pos = [], False, 0
    for f in found:
        rest.append(value[pos : f.start])
        spans.append(f.span)
        texts.append(value[f.start : f.end])
        relative = relative or f.relative
        pos = f.end
    rest.append(value[pos:])
    return " ".join(rest).split(), relative


def parse_query(text: str, tz: tzinfo, *, max_chars: int = MAX_QUERY_CHARS, today: date | None = None,
                tokenizer: "Tokenizer | None" = None) -> Query:
    """Parse what the user typed. Raises :class:`QueryError` for bad dates or an over-long query.

    Dates written inside plain words are read against ``today`` (default: today in ``tz``);
    with a ``tokenizer``, words that only ask are dropped (see :func:`read_words`)."""
    text = " ".join(text.split())
    today = today or datetime.now(tz).date()
    if len(text) > max_chars:
        raise QueryError("too_long")
    words: list[str] = []
    phrases: list[str] = []
    excluded: list[str] = []
    tags: list[str] = []
    cats: list[str] = []
    dates = DateRange()
    in_words: list[DateRange] = []
    date_words: list[str] = []
    relative = False
    for m in _TOKEN.finditer(text):
        neg, key = m["neg"] == "-", (m["key"] or "").lower()
        quoted = next((g for g in (m["dq"], m["cq"], m["jq"]) if g is not None), None)
        value = (quoted if quoted is not None else m["bare"] or "").strip()
        if not value:
            continue
        if key in _SINCE_KEYS | _UNTIL_KEYS | _DATE_KEYS:
            dates = dates.intersect(_date_filter(key, value, tz))
        elif key in _TAG_KEYS:
            tags.append(value)
        elif key in _CAT_KEYS:
            cats.append(value)
        else:
            if key:  # an unknown "key:" stays part of the text
                value = f"{m['key']}:{value}"
            if neg:
                excluded.append(value)
            elif quoted is not None:
                phrases.append(value)
            elif looks_like_date(value):
                dates = dates.intersect(_date_filter("", value, tz))
            else:
                rest, was_relative = _dates_in(value, today, tz, in_words, date_words)
                words += rest
                relative = relative or was_relative
    given = dates
    if in_words:  # several dates in the words: the time they span together
        dates = dates.intersect(DateRange(min(s.start for s in in_words), max(s.end for s in in_words)))  # type: ignore[type-var]
    if dates.start is not None and dates.end is not None and dates.start >= dates.end:
        raise QueryError("empty_range")
    recent = False
    if tokenizer is not None:
        reading = read_words(words, tokenizer)
        words, recent = list(reading.words), reading.recent
    return Query(text, tuple(words), tuple(phrases), tuple(excluded), dates, tuple(tags), tuple(cats),
                 recent=recent, relative=relative, question=is_question(text), dates_in_words=bool(in_words),
                 date_words=tuple(date_words), given_dates=given)


def range_query(text: str) -> str:
    """``/range``'s argument — ``FROM TO [QUERY]`` or ``SPAN [QUERY]`` — as a query string with a
    ``date:`` filter (``2019-11-01 2019-11-30 教育`` → ``date:2019-11-01..2019-11-30 教育``; a bare
    year counts as a date here). Raises :class:`QueryError` (``range_usage``, ``bad_date``)."""
    parts = text.split()
    if not parts:
        raise QueryError("range_usage")
    if len(parts) >= 2:
        try:
            for part in parts[:2]:
                parse_date_span(part, _UTC)
            return " ".join([f"date:{parts[0]}..{parts[1]}", *parts[2:]])
        except DateError:
            pass
    try:
        parse_date_range(parts[0], _UTC)
    except DateError:
        raise QueryError("bad_date", parts[0][:40]) from None
    return " ".join([f"date:{parts[0]}", *parts[1:]])
