"""Dates: front-matter values, and the date forms users type (``2019-11``, ``2019年11月``…)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

DEFAULT_TIMEZONE = "Asia/Shanghai"

_DAY = re.compile(r"^(\d{4})\s*(?:[-/.]|年)\s*(\d{1,2})\s*(?:[-/.]|月)\s*(\d{1,2})\s*[日号]?$")
_COMPACT_DAY = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_MONTH = re.compile(r"^(\d{4})\s*(?:[-/.]|年)\s*(\d{1,2})\s*月?$")
_YEAR = re.compile(r"^(\d{4})\s*年?$")
_RANGE_SEP = re.compile(r"\.\.|~|～|至|到")
_FILENAME_DATE = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)")

MIN_YEAR, MAX_YEAR = 1900, 2100


class DateError(ValueError):
    """A date the user typed that cannot be understood; ``value`` is what they typed."""

    def __init__(self, value: str) -> None:
        super().__init__(f"cannot understand the date {value!r}")
        self.value = value


@dataclass(frozen=True, slots=True)
class DateRange:
    """Half-open interval ``[start, end)`` of aware datetimes; either side may be open."""

    start: datetime | None = None
    end: datetime | None = None

    def __contains__(self, when: datetime) -> bool:
        return (self.start is None or when >= self.start) and (self.end is None or when < self.end)

    def intersect(self, other: "DateRange") -> "DateRange":
        """The range covered by both."""
        starts = [d for d in (self.start, other.start) if d is not None]
        ends = [d for d in (self.end, other.end) if d is not None]
        return DateRange(max(starts) if starts else None, min(ends) if ends else None)

    @property
    def unbounded(self) -> bool:
        return self.start is None and self.end is None


def timezone(name: str = DEFAULT_TIMEZONE) -> tzinfo:
    """The zone naive dates are read in."""
    return ZoneInfo(name)


def _check_year(year: int, raw: str) -> None:
    """Years outside MIN_YEAR..MAX_YEAR are refused before any datetime is built (year 0 or
    10000 would raise ValueError/OverflowError from the datetime module itself)."""
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise DateError(raw)


def _day_range(year: int, month: int, day: int, tz: tzinfo, raw: str) -> DateRange:
    _check_year(year, raw)
    try:
        first = date(year, month, day)
    except ValueError:
        raise DateError(raw) from None
    start = datetime.combine(first, time(), tz)
    return DateRange(start, datetime.combine(first + timedelta(days=1), time(), tz))


def _month_range(year: int, month: int, tz: tzinfo, raw: str) -> DateRange:
    _check_year(year, raw)
    if not 1 <= month <= 12:
        raise DateError(raw)
    start = datetime(year, month, 1, tzinfo=tz)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=tz)
    return DateRange(start, end)


def parse_date_span(text: str, tz: tzinfo, *, allow_bare_year: bool = True) -> DateRange:
    """The span a single date form covers: a day, a month or a year.

    ``2019-11-01``, ``2019/11/1``, ``20191101``, ``2019年11月1日``: that day;
    ``2019-11``, ``2019年11月``: that month; ``2019年`` (or ``2019`` when
    ``allow_bare_year``): that year. Anything else raises :class:`DateError`.
    """
    raw = text
    text = text.strip()
    if m := _DAY.match(text) or _COMPACT_DAY.match(text):
        year, month, day = (int(g) for g in m.groups())
        span = _day_range(year, month, day, tz, raw)
    elif m := _MONTH.match(text):
        year, month = int(m[1]), int(m[2])
        span = _month_range(year, month, tz, raw)
    elif (m := _YEAR.match(text)) and (allow_bare_year or text.endswith("年")):
        year = int(m[1])
        _check_year(year, raw)
        span = DateRange(datetime(year, 1, 1, tzinfo=tz), datetime(year + 1, 1, 1, tzinfo=tz))
    else:
        raise DateError(raw)
    return span


def parse_date_range(text: str, tz: tzinfo) -> DateRange:
    """A single form (its whole span) or ``FROM..TO`` (also ``~``, ``至``, ``到``; either side may be empty)."""
    parts = _RANGE_SEP.split(text.strip())
    if len(parts) == 1:
        return parse_date_span(parts[0], tz)
    if len(parts) != 2 or not (parts[0].strip() or parts[1].strip()):
        raise DateError(text)
    lo = parse_date_span(parts[0], tz).start if parts[0].strip() else None
    hi = parse_date_span(parts[1], tz).end if parts[1].strip() else None
    if lo is not None and hi is not None and lo >= hi:
        raise DateError(text)
    return DateRange(lo, hi)


def looks_like_date(text: str) -> bool:
    """True for the shorthand forms a query may contain without ``since:``/``until:``.

    A bare four-digit number is a word, not a year: only ``2019年`` is a year.
    """
    text = text.strip()
    if _RANGE_SEP.search(text):
        return all(not p.strip() or looks_like_date(p) for p in _RANGE_SEP.split(text)) and any(
            p.strip() for p in _RANGE_SEP.split(text)
        )
    return bool(_DAY.match(text) or _MONTH.match(text) or (_YEAR.match(text) and text.endswith("年")))


def coerce_front_matter_date(value: object, tz: tzinfo) -> datetime | None:
    """A front-matter ``date`` (YAML datetime, date or string) as an aware datetime, or None."""
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, date):
        when = datetime.combine(value, time())
    elif isinstance(value, str) and value.strip():
        try:
            when = datetime.fromisoformat(value.strip().replace("/", "-"))
        except ValueError:
            try:
                return parse_date_span(value, tz, allow_bare_year=False).start
            except DateError:
                return None
    else:
        return None
    if not MIN_YEAR <= when.year <= MAX_YEAR:
        return None
    return when.replace(tzinfo=tz) if when.tzinfo is None else when


def date_from_filename(name: str, tz: tzinfo) -> datetime | None:
    """``2019-11-13-slug.md`` gives 2019-11-13 00:00 in ``tz``."""
    m = _FILENAME_DATE.search(name)
    if not m:
        return None
    try:
        return datetime(int(m[1]), int(m[2]), int(m[3]), tzinfo=tz)
    except ValueError:
        return None
