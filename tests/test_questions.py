"""Questions as people type them: dates inside sentences (absolute and relative to the
archive's clock), words that only ask, newest-first, traditional characters, unknown names,
and the answering sentence."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retrieval import Archive
from retrieval.when import _ANY, _COMPILED, describe, find_dates

from conftest import write_post

TZ = ZoneInfo("Asia/Shanghai")
TODAY = date(2026, 11, 25)  # a Wednesday

# (text, the date expression found in it, the days it means, relative to today?)
FORMS = [
    ("2019年11月有哪些关于香港的新闻？", "2019年11月", "2019-11-01 – 2019-11-30", False),
    ("2019年11月12日", "2019年11月12日", "2019-11-12", False),
    ("2019年11月12号的会议", "2019年11月12号", "2019-11-12", False),
    ("2019年11月12日至15日", "2019年11月12日至15日", "2019-11-12 – 2019-11-15", False),
    ("2019年11月12日到12月3日", "2019年11月12日到12月3日", "2019-11-12 – 2019-12-03", False),
    ("2019年11月28日至2020年1月2日", "2019年11月28日至2020年1月2日", "2019-11-28 – 2020-01-02", False),
    ("2019.11.12", "2019.11.12", "2019-11-12", False),
    ("2019-11-12发布", "2019-11-12", "2019-11-12", False),
    ("2019/11/12", "2019/11/12", "2019-11-12", False),
    ("2019-11的新闻", "2019-11", "2019-11-01 – 2019-11-30", False),
    ("2019.11", "2019.11", "2019-11-01 – 2019-11-30", False),
    ("二〇一九年十一月", "二〇一九年十一月", "2019-11-01 – 2019-11-30", False),
    ("二〇一九年十一月十二日", "二〇一九年十一月十二日", "2019-11-12", False),
    ("2019年上半年", "2019年上半年", "2019-01-01 – 2019-06-30", False),
    ("2019年下半年", "2019年下半年", "2019-07-01 – 2019-12-31", False),
    ("2019年第三季度", "2019年第三季度", "2019-07-01 – 2019-09-30", False),
    ("2019年一季度", "2019年一季度", "2019-01-01 – 2019-03-31", False),
    ("2019年的经济", "2019年", "2019-01-01 – 2019-12-31", False),
    ("2019年11月至12月", "2019年11月至12月", "2019-11-01 – 2019-12-31", False),
    ("2019年至2020年", "2019年至2020年", "2019-01-01 – 2020-12-31", False),
    ("2018-2019年", "2018-2019年", "2018-01-01 – 2019-12-31", False),
    ("２０１９年１１月", "２０１９年１１月", "2019-11-01 – 2019-11-30", False),
    ("十一月十二日", "十一月十二日", "2026-11-12", True),
    ("11月12日", "11月12日", "2026-11-12", True),
    ("12月3日", "12月3日", "2025-12-03", True),  # the most recent one not in the future
    ("11月25日", "11月25日", "2026-11-25", True),
    ("11月26号", "11月26号", "2025-11-26", True),
    ("11月12日至15日", "11月12日至15日", "2026-11-12 – 2026-11-15", True),
    ("十二月", "十二月", "2025-12-01 – 2025-12-31", True),
    ("3月份", "3月份", "2026-03-01 – 2026-03-31", True),
    ("今天", "今天", "2026-11-25", True),
    ("今日要闻", "今日", "2026-11-25", True),
    ("昨天的新闻", "昨天", "2026-11-24", True),
    ("昨日", "昨日", "2026-11-24", True),
    ("前天", "前天", "2026-11-23", True),
    ("本周", "本周", "2026-11-23 – 2026-11-25", True),
    ("这周", "这周", "2026-11-23 – 2026-11-25", True),
    ("这个星期", "这个星期", "2026-11-23 – 2026-11-25", True),
    ("上周", "上周", "2026-11-16 – 2026-11-22", True),
    ("上个星期", "上个星期", "2026-11-16 – 2026-11-22", True),
    ("上周三", "上周三", "2026-11-18", True),
    ("上星期日", "上星期日", "2026-11-22", True),
    ("本周一", "本周一", "2026-11-23", True),
    ("本月", "本月", "2026-11-01 – 2026-11-25", True),
    ("这个月", "这个月", "2026-11-01 – 2026-11-25", True),
    ("上个月", "上个月", "2026-10-01 – 2026-10-31", True),
    ("上月", "上月", "2026-10-01 – 2026-10-31", True),
    ("今年", "今年", "2026-01-01 – 2026-12-31", True),
    ("去年", "去年", "2025-01-01 – 2025-12-31", True),
    ("前年", "前年", "2024-01-01 – 2024-12-31", True),
    ("去年12月的新闻", "去年12月", "2025-12-01 – 2025-12-31", True),
    ("今年3月", "今年3月", "2026-03-01 – 2026-03-31", True),
    ("去年十二月五日", "去年十二月五日", "2025-12-05", True),
    ("去年上半年", "去年上半年", "2025-01-01 – 2025-06-30", True),
    ("今年以来", "今年以来", "2026-01-01 – 2026-11-25", True),
    ("3月以来", "3月以来", "2026-03-01 – 2026-11-25", True),
    ("本月以来", "本月以来", "2026-11-01 – 2026-11-25", True),
    ("最近三天有什么消息", "最近三天", "2026-11-23 – 2026-11-25", True),
    ("最近3天", "最近3天", "2026-11-23 – 2026-11-25", True),
    ("近7天", "近7天", "2026-11-19 – 2026-11-25", True),
    ("过去两周", "过去两周", "2026-11-12 – 2026-11-25", True),
    ("最近一周", "最近一周", "2026-11-19 – 2026-11-25", True),
    ("近一个月", "近一个月", "2026-10-26 – 2026-11-25", True),
    ("最近3个月", "最近3个月", "2026-08-26 – 2026-11-25", True),
    ("过去一年", "过去一年", "2025-11-26 – 2026-11-25", True),
    ("最近几天", "最近几天", "2026-11-23 – 2026-11-25", True),
]
NOT_DATES = ["三个月", "1990年代", "2019", "第十一届", "月亮", "上海", "新年", "周恩来", "星期天"]


@pytest.mark.parametrize("text, expression, days, relative", FORMS, ids=[f[0] for f in FORMS])
def test_date_forms(text: str, expression: str, days: str, relative: bool):
    found = find_dates(text, TODAY, TZ)
    assert [(text[f.start:f.end], describe(f.span), f.relative) for f in found] == [(expression, days, relative)]


@pytest.mark.parametrize("text", NOT_DATES)
def test_words_that_are_not_dates(text: str):
    assert find_dates(text, TODAY, TZ) == []


#: The characters the date forms are made of, and a few that are not.
DATE_CHARS = "0123456789〇零一二两三四五六七八九十年月日号至到今去前昨本这上下个周星期礼拜天最近过几季度半份以来.-/ 的新闻香港"


@given(st.text(DATE_CHARS, max_size=14) | st.sampled_from([f[0] for f in FORMS] + NOT_DATES))
@settings(max_examples=3000, deadline=None)
def test_the_quick_check_misses_no_date(text: str):
    """find_dates first asks one regex of every form whether the text holds any of them: it
    must say yes wherever any form matches."""
    if any(m.end() > m.start() for pattern, _, _ in _COMPILED for m in pattern.finditer(text)):
        assert _ANY.search(text)


def test_the_table_is_long_enough():
    assert len(FORMS) >= 60


@pytest.fixture
def archive(content: Path) -> Archive:
    for n, (day, title) in enumerate([("2019-11-05", "香港局势受到关注"), ("2019-11-20", "香港经济论坛举行"),
                                      ("2019-12-02", "香港回归纪念活动"), ("2018-11-10", "香港大学校庆")]):
        write_post(content, f"hk/{n}.md", title, f"{title}。香港各界人士参加。", date=f"{day} 09:00:00", urlname=f"hk{n}")
    for n, (day, title) in enumerate([("2019-06-01", "伊朗核问题谈判"), ("2021-03-02", "伊朗外长访华"),
                                      ("2020-01-08", "伊朗局势升级"), ("2019-01-01", "中东形势与伊朗")]):
        write_post(content, f"iran/{n}.md", title, f"{title}。伊朗方面表示。", date=f"{day} 09:00:00", urlname=f"ir{n}")
    write_post(content, "names/1.md", "三国人物志", "孙权的夫人潘淑，后来病逝。", date="2019-10-01 09:00:00", urlname="panshu")
    write_post(content, "names/2.md", "足球新闻", "前锋白岳峰，效力于天津泰达。", date="2019-10-02 09:00:00", urlname="bai")
    return Archive.open(content, settle_seconds=0, clock=lambda: datetime(2019, 12, 15, 10, 0, tzinfo=TZ))


def ids(page) -> list[str]:
    return [h.post.id for h in page.hits]


def test_a_question_runs_exactly_as_its_query(archive: Archive):
    question = archive.parse("2019年11月有哪些关于香港的新闻？")
    plain = archive.parse("香港 since:2019-11-01 until:2019-11-30")
    fields = ("words", "phrases", "excluded", "dates", "tags", "categories", "recent")
    assert [getattr(question, f) for f in fields] == [getattr(plain, f) for f in fields]
    assert ids(archive.search(question)) == ids(archive.search(plain)) == ["hk1", "hk0"]
    assert not question.question  # it asks for posts: the list is the answer


@pytest.mark.parametrize("text, expected", [
    ("上个月的香港新闻", ["hk0", "hk1"]),            # the archive's clock says 2019-12-15
    ("这个月香港有什么消息", ["hk2"]),
    ("去年11月香港", ["hk3"]),
    ("香港 11月20日", ["hk1"]),
])
def test_relative_dates_follow_the_archive_clock(archive: Archive, text: str, expected: list[str]):
    assert sorted(ids(archive.search(text))) == expected


def test_words_that_only_ask_are_not_ranked(archive: Archive):
    assert archive.parse("请问有没有关于伊朗的报道").words == ("伊朗",)
    assert archive.parse("新闻").words == ("新闻",)  # nothing but filler: kept as typed
    assert archive.search("帮我找一下香港相关的文章").tokens == ("香港",)


def test_newest_first(archive: Archive):
    page = archive.search("最新的伊朗新闻")
    assert page.query.recent and ids(page) == ["ir1", "ir2", "ir0", "ir3"]
    latest = archive.search("最新")
    assert latest.query.recent and not latest.query.has_terms and latest.total == len(archive)
    assert ids(latest)[0] == "ir1"  # the newest post of the archive (2021-03-02)


def test_traditional_characters_find_simplified_posts(archive: Archive, content: Path):
    assert ids(archive.search("學校召開主題教育整改落實推進會"))[0] == "732b943ded78f99c9f130328fe20b0b3"
    assert ids(archive.search("香港經濟論壇"))[0] == "hk1"


@pytest.mark.parametrize("question, glued, post", [("潘淑是怎么死的", "潘淑是", "panshu"),
                                                  ("白岳峰现效力于哪支球队", "白岳峰现", "bai")])
def test_unknown_names_back_off_to_their_parts(archive: Archive, question: str, glued: str, post: str):
    assert glued in archive.tokenizer.tokenize(question) and glued not in archive.index.vocab  # jieba glued it
    page = archive.search(question)
    assert ids(page)[0] == post and glued not in page.tokens


@pytest.mark.parametrize("question, post, holds", [
    ("南开大学在哪里召开了主题教育整改落实推进会？", "732b943ded78f99c9f130328fe20b0b3", "八里台校区省身楼"),
    ("白岳峰现效力于哪支球队", "bai", "天津泰达"),
    ("潘淑是谁的夫人？", "panshu", "孙权的夫人潘淑"),
])
def test_a_question_gets_the_sentence_that_answers_it(archive: Archive, question: str, post: str, holds: str):
    page = archive.search(question)
    assert page.answer is not None and page.answer.post.id == post
    assert holds in page.answer.text and len(page.answer.text) <= 100
    assert page.answer.text.spans  # the question's words are marked


def test_no_answer_for_a_topic(archive: Archive):
    assert archive.search("香港 经济").answer is None


def test_a_date_no_post_has_becomes_words_again(archive: Archive):
    page = archive.search("潘淑1903年的事迹")  # about a year, not posts of that year
    assert page.relaxed_dates is not None and page.relaxed_dates.start.year == 1903
    assert [h.post.id for h in page.hits][:1] == ["panshu"] and page.query.dates.unbounded
