"""Dates written inside sentences: ``2019年11月有哪些…``, ``上个月``, ``去年12月``, ``最近三天``…

:func:`find_dates` finds every date expression in a piece of text, without needing spaces
around it, and says which span of days each one means. Relative forms (``昨天``, ``上周三``,
``最近3个月``, and month-day forms without a year, which mean the most recent such day that is
not in the future) are read against ``today``, which the caller gives: the archive has one
clock, set by tests. Chinese numerals are read as well (``二〇一九年十一月``, ``十一月十二日``).

Why our own parser rather than jionlp's ``extract_time``: on the table of forms in
``tests/test_when.py`` both cover most absolute forms, but jionlp misses ``上个月`` and
``3月以来``, reads ``最近三天`` as 72 hours back from the current second rather than three
calendar days, prints a banner on import, and brings about 40 MB of dictionaries for this one
use. The forms a search box sees are few and regular; this module is about 200 lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Callable

from .dates import MAX_YEAR, MIN_YEAR, DateRange

_CN_DIGITS = {"〇": 0, "零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
N = r"(?:\d{1,4}|[〇零一二两三四五六七八九十]{1,4})"
Y = r"(?:\d{4}|[〇零一二三四五六七八九]{4})"
TO = r"\s*(?:至|到|~|～|—|-)\s*"
DAY_MARK = r"[日号]"
WEEK = r"(?:周|星期|礼拜)"
WEEKDAYS = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6, "1": 0, "2": 1, "3": 2, "4": 3,
            "5": 4, "6": 5, "7": 6}
YEAR_WORDS = {"今年": 0, "去年": -1, "前年": -2}


def cn_number(text: str) -> int:
    """``12``, ``十二``, ``二十三``, ``两``, and digit by digit ``二〇一九``."""
    if text.isdigit():
        return int(text)
    if "十" not in text:
        value = 0
        for ch in text:
            value = value * 10 + _CN_DIGITS[ch]
        return value
    tens, _, ones = text.partition("十")
    return (_CN_DIGITS[tens] if tens else 1) * 10 + (_CN_DIGITS[ones] if ones else 0)


@dataclass(frozen=True, slots=True)
class FoundDate:
    """A date expression in a text: where it is, the days it covers, and whether it depends
    on today's date."""

    start: int
    end: int
    span: DateRange
    relative: bool


class _Reader:
    """Turns one match into a span, against ``today``."""

    def __init__(self, today: date, tz: tzinfo) -> None:
        self.today, self.tz = today, tz

    def at(self, day: date) -> datetime:
        return datetime.combine(day, time(), self.tz)

    def days(self, first: date, last: date) -> DateRange:
        if last < first:
            raise ValueError("backwards")
        return DateRange(self.at(first), self.at(last + timedelta(days=1)))

    @staticmethod
    def ymd(year: int, month: int, day: int) -> date:
        if not MIN_YEAR <= year <= MAX_YEAR:
            raise ValueError("year")
        return date(year, month, day)

    def month(self, year: int, month: int) -> tuple[date, date]:
        first = self.ymd(year, month, 1)
        following = date(year + (month == 12), month % 12 + 1, 1)
        return first, following - timedelta(days=1)

    def recent_year(self, month: int, day: int = 1) -> int:
        """The year in which month/day is the most recent such date not after today."""
        year = self.today.year
        return year if date(year, month, min(day, 28 if month == 2 else day)) <= self.today else year - 1

    def week_start(self, weeks_back: int) -> date:
        return self.today - timedelta(days=self.today.weekday() + 7 * weeks_back)

    def back(self, count: int, unit: str) -> date:
        """The first day of the last ``count`` days/weeks/months/years, today included."""
        if unit in ("天", "日"):
            return self.today - timedelta(days=count - 1)
        if unit in ("周", "星期", "礼拜"):
            return self.today - timedelta(days=7 * count - 1)
        if unit.endswith("月"):
            months = self.today.year * 12 + self.today.month - 1 - count
            year, month = divmod(months, 12)
            return date(year, month + 1, min(self.today.day, 28)) + timedelta(days=1)
        return date(self.today.year - count, self.today.month, min(self.today.day, 28)) + timedelta(days=1)


Handler = Callable[[_Reader, re.Match], DateRange]


def _year(m: re.Match, key: str = "y") -> int:
    return cn_number(m[key])


def _half(r: _Reader, year: int, part: str) -> DateRange:
    quarters = {"一": 1, "二": 2, "三": 3, "四": 4, "1": 1, "2": 2, "3": 3, "4": 4}
    if part.startswith("上"):
        return r.days(r.ymd(year, 1, 1), date(year, 6, 30))
    if part.startswith("下"):
        return r.days(r.ymd(year, 7, 1), date(year, 12, 31))
    q = quarters[re.sub(r"[第季度]", "", part)]
    return r.days(r.month(year, 3 * q - 2)[0], r.month(year, 3 * q)[1])


def _relative_year(r: _Reader, word: str) -> int:
    return r.today.year + YEAR_WORDS[word]


_DAY_RANGE_Y = (rf"(?P<y>{Y})年(?P<m>{N})月(?P<d>{N}){DAY_MARK}?{TO}(?:(?:(?P<y2>{Y})年)?(?P<m2>{N})月)?(?P<d2>{N}){DAY_MARK}",
                lambda r, m: r.days(r.ymd(_year(m), cn_number(m["m"]), cn_number(m["d"])),
                                    r.ymd(_year(m, "y2") if m["y2"] else _year(m), cn_number(m["m2"] or m["m"]), cn_number(m["d2"]))))
_PATTERNS: list[tuple[str, Handler, bool]] = [
    # absolute, with a year
    (*_DAY_RANGE_Y, False),
    (rf"(?P<y>{Y})年(?P<m>{N})月{TO}(?:(?P<y2>{Y})年)?(?P<m2>{N})月",
     lambda r, m: r.days(r.month(_year(m), cn_number(m["m"]))[0],
                         r.month(_year(m, "y2") if m["y2"] else _year(m), cn_number(m["m2"]))[1]), False),
    (rf"(?P<y>{Y})年?{TO}(?P<y2>{Y})年", lambda r, m: r.days(r.ymd(_year(m), 1, 1), r.ymd(_year(m, "y2"), 12, 31)), False),
    (rf"(?P<y>{Y})年(?P<m>{N})月(?P<d>{N}){DAY_MARK}?",
     lambda r, m: r.days(*[r.ymd(_year(m), cn_number(m["m"]), cn_number(m["d"]))] * 2), False),
    (r"(?P<y>\d{4})[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})(?!\d)",
     lambda r, m: r.days(*[r.ymd(_year(m), int(m["m"]), int(m["d"]))] * 2), False),
    (rf"(?P<y>{Y})年(?P<m>{N})月份?", lambda r, m: r.days(*r.month(_year(m), cn_number(m["m"]))), False),
    (r"(?P<y>\d{4})[-/.](?P<m>\d{1,2})(?![-/.]?\d)", lambda r, m: r.days(*r.month(_year(m), int(m["m"]))), False),
    (rf"(?P<y>{Y})年?(?P<p>[上下]半年|第?[一二三四1-4]季度)", lambda r, m: _half(r, _year(m), m["p"]), False),
    (rf"(?P<y>{Y})年(?!代)", lambda r, m: r.days(r.ymd(_year(m), 1, 1), date(_year(m), 12, 31)), False),
    # relative years: 今年、去年3月、前年上半年、今年以来
    (r"(?P<w>今年|去年|前年)以来", lambda r, m: r.days(r.ymd(_relative_year(r, m["w"]), 1, 1), r.today), True),
    (rf"(?P<w>今年|去年|前年)(?P<m>{N})月(?P<d>{N}){DAY_MARK}",
     lambda r, m: r.days(*[r.ymd(_relative_year(r, m["w"]), cn_number(m["m"]), cn_number(m["d"]))] * 2), True),
    (rf"(?P<w>今年|去年|前年)(?P<m>{N})月份?",
     lambda r, m: r.days(*r.month(_relative_year(r, m["w"]), cn_number(m["m"]))), True),
    (r"(?P<w>今年|去年|前年)(?P<p>[上下]半年|第?[一二三四1-4]季度)", lambda r, m: _half(r, _relative_year(r, m["w"]), m["p"]), True),
    (r"(?P<w>今年|去年|前年)", lambda r, m: r.days(r.ymd(_relative_year(r, m["w"]), 1, 1),
                                            date(_relative_year(r, m["w"]), 12, 31)), True),
    # month and day without a year: the most recent one not in the future
    (rf"(?<![\d〇零一二两三四五六七八九十年])(?P<m>{N})月(?P<d>{N}){DAY_MARK}{TO}(?:(?P<m2>{N})月)?(?P<d2>{N}){DAY_MARK}",
     lambda r, m: r.days(r.ymd(r.recent_year(cn_number(m["m"]), cn_number(m["d"])), cn_number(m["m"]), cn_number(m["d"])),
                         r.ymd(r.recent_year(cn_number(m["m"]), cn_number(m["d"])), cn_number(m["m2"] or m["m"]), cn_number(m["d2"]))), True),
    (rf"(?<![\d〇零一二两三四五六七八九十年])(?P<m>{N})月(?P<d>{N}){DAY_MARK}",
     lambda r, m: r.days(*[r.ymd(r.recent_year(cn_number(m["m"]), cn_number(m["d"])), cn_number(m["m"]), cn_number(m["d"]))] * 2), True),
    (rf"(?<![\d〇零一二两三四五六七八九十年])(?P<m>{N})月份?以来",
     lambda r, m: r.days(r.ymd(r.recent_year(cn_number(m["m"])), cn_number(m["m"]), 1), r.today), True),
    (rf"(?<![\d〇零一二两三四五六七八九十年上本这个])(?P<m>{N})月份?(?![\d〇零一二两三四五六七八九十日号])",
     lambda r, m: r.days(*r.month(r.recent_year(cn_number(m["m"])), cn_number(m["m"]))), True),
    # days, weeks, months around today
    (r"今天|今日", lambda r, m: r.days(r.today, r.today), True),
    (r"昨天|昨日", lambda r, m: r.days(*[r.today - timedelta(days=1)] * 2), True),
    (r"前天", lambda r, m: r.days(*[r.today - timedelta(days=2)] * 2), True),
    (rf"(?P<w>上上|上个?|本|这个?){WEEK}(?P<d>[一二三四五六日天1-7])",
     lambda r, m: r.days(*[r.week_start({"上上": 2}.get(m["w"], 1 if m["w"].startswith("上") else 0))
                           + timedelta(days=WEEKDAYS[m["d"]])] * 2), True),
    (rf"(?P<w>上上|上个?|本|这个?){WEEK}",
     lambda r, m: (lambda s: r.days(s, min(s + timedelta(days=6), r.today)))(
         r.week_start({"上上": 2}.get(m["w"], 1 if m["w"].startswith("上") else 0))), True),
    (r"(?:本|这个?)月(?:以来)?", lambda r, m: r.days(r.today.replace(day=1), r.today), True),
    (r"上个?月", lambda r, m: r.days(*r.month(*((r.today.year, r.today.month - 1) if r.today.month > 1 else (r.today.year - 1, 12)))), True),
    (rf"(?:最近|近|过去|前)(?P<n>{N}|几)(?P<u>天|日|周|星期|礼拜|个月|月|年)",
     lambda r, m: r.days(r.back(3 if m["n"] == "几" else cn_number(m["n"]), m["u"]), r.today), True),
    (r"(?:最近|近)一?(?P<u>周|星期)", lambda r, m: r.days(r.back(1, m["u"]), r.today), True),
]
_COMPILED = [(re.compile(p), h, rel) for p, h, rel in _PATTERNS]
#: Every pattern at once (their group names dropped): one search says whether a text holds
#: anything that looks like a date, which most queries do not. Trying each pattern instead
#: costs about 15 µs a query.
_ANY = re.compile("|".join(f"(?:{re.sub(r'[(][?]P<[a-z0-9_]+>', '(?:', p)})" for p, _, _ in _PATTERNS))


def find_dates(text: str, today: date, tz: tzinfo) -> list[FoundDate]:
    """Every date expression in ``text``, left to right, not overlapping (the longest where
    two start together). Expressions that name no real day (``2019年13月``) are not dates."""
    if not _ANY.search(text):
        return []
    reader = _Reader(today, tz)
    candidates: list[tuple[int, int, int, Handler, bool, re.Match]] = []
    for order, (pattern, handler, relative) in enumerate(_COMPILED):
        for m in pattern.finditer(text):
            if m.end() > m.start():
                candidates.append((m.start(), -(m.end() - m.start()), order, handler, relative, m))
    candidates.sort(key=lambda c: c[:3])
    found: list[FoundDate] = []
    taken = 0
    for start, neg_len, _, handler, relative, m in candidates:
        if start < taken:
            continue
        try:
            span = handler(reader, m)
        except (ValueError, KeyError, OverflowError):
            continue
        found.append(FoundDate(start, start - neg_len, span, relative))
        taken = start - neg_len
    return found


def describe(span: DateRange) -> str:
    """``2025-10-01 – 2025-10-31`` (the last day included); an open side is left blank."""
    first = f"{span.start:%Y-%m-%d}" if span.start else ""
    last = f"{span.end - timedelta(days=1):%Y-%m-%d}" if span.end else ""
    return first if first == last else f"{first} – {last}".strip()
