"""The query language: words, "phrases", -exclusions, date and tag/category filters."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timezone, tzinfo

from .dates import DateError, DateRange, looks_like_date, parse_date_range, parse_date_span

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

    @property
    def has_terms(self) -> bool:
        """Whether anything is to be ranked (words or phrases)."""
        return bool(self.words or self.phrases)

    @property
    def has_filters(self) -> bool:
        return not self.dates.unbounded or bool(self.tags or self.categories or self.excluded)

    @property
    def is_empty(self) -> bool:
        return not self.has_terms and not self.has_filters

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


def parse_query(text: str, tz: tzinfo, *, max_chars: int = MAX_QUERY_CHARS) -> Query:
    """Parse what the user typed. Raises :class:`QueryError` for bad dates or an over-long query."""
    text = " ".join(text.split())
    if len(text) > max_chars:
        raise QueryError("too_long")
    words: list[str] = []
    phrases: list[str] = []
    excluded: list[str] = []
    tags: list[str] = []
    cats: list[str] = []
    dates = DateRange()
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
                words.append(value)
    if dates.start is not None and dates.end is not None and dates.start >= dates.end:
        raise QueryError("empty_range")
    return Query(text, tuple(words), tuple(phrases), tuple(excluded), dates, tuple(tags), tuple(cats))


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
