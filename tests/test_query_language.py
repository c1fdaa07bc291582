"""The query language, run against the fixture archive."""

from pathlib import Path

import pytest

from retrieval import Archive, QueryError
from retrieval.dates import timezone
from retrieval.query import parse_query

TZ = timezone()


@pytest.fixture
def archive(content: Path) -> Archive:
    return Archive.open(content, settle_seconds=0)


def ids(page) -> list[str]:
    return [h.post.id for h in page.hits]


def test_parse_all_forms():
    q = parse_query('主题 "不忘初心" -体育 since:2019-11-01 until:2019-11-30 tag:南开大学 cat:nankai.info', TZ)
    assert q.words == ("主题",) and q.phrases == ("不忘初心",) and q.excluded == ("体育",)
    assert q.tags == ("南开大学",) and q.categories == ("nankai.info",)
    assert q.dates.start.isoformat() == "2019-11-01T00:00:00+08:00"
    assert q.dates.end.isoformat() == "2019-12-01T00:00:00+08:00"
    for text, start, end in [
        ("2019-11", "2019-11-01", "2019-12-01"),
        ("2019年11月", "2019-11-01", "2019-12-01"),
        ("2019年", "2019-01-01", "2020-01-01"),
        ("2019-11-01..2019-11-30", "2019-11-01", "2019-12-01"),
        ("2019年12月", "2019-12-01", "2020-01-01"),
    ]:
        q = parse_query(text, TZ)
        assert (q.dates.start.date().isoformat(), q.dates.end.date().isoformat()) == (start, end), text
        assert not q.words
    assert parse_query("2019 年会", TZ).words == ("2019", "年会")  # a bare number is a word


@pytest.mark.parametrize("text", ["since:2019-13-01", "until:yesterday", "2019-02-30", "date:2019-11-30..2019-11-01"])
def test_bad_dates_are_clear_errors(text):
    with pytest.raises(QueryError) as info:
        parse_query(text, TZ)
    assert info.value.code in ("bad_date", "empty_range")
    assert "2019" in str(info.value) or "empty" in str(info.value)


def test_over_long_query_is_an_error():
    with pytest.raises(QueryError) as info:
        parse_query("主题" * 200, TZ)
    assert info.value.code == "too_long"


def test_search_words_and_prefix_granularity(archive: Archive):
    assert "732b943ded78f99c9f130328fe20b0b3" in ids(archive.search("主题教育"))
    assert "732b943ded78f99c9f130328fe20b0b3" in ids(archive.search("南开"))  # 南开 finds 南开大学
    assert ids(archive.search("machine learning"))[0] == "ai-conference"  # English, case-folded
    assert ids(archive.search("ＡＩ"))[0] == "ai-conference"  # full-width, NFKC


def test_exclusion_phrase_and_filters(archive: Archive):
    assert "sports-2019-11-20" in ids(archive.search("主题教育"))
    assert "sports-2019-11-20" not in ids(archive.search("主题教育 -体育"))
    assert ids(archive.search('"不忘初心"')) == ["732b943ded78f99c9f130328fe20b0b3"]
    assert ids(archive.search('"初心不忘"')) == []
    assert ids(archive.search("南开 tag:体育")) == ["sports-2019-11-20"]
    assert ids(archive.search("cat:NANKAI.INFO", limit=10)) == ["sports-2019-11-20", "732b943ded78f99c9f130328fe20b0b3"]
    assert ids(archive.search("主题教育 until:2019-11-15")) == ["732b943ded78f99c9f130328fe20b0b3"]
    assert ids(archive.search("主题教育 2019-11-16..2019-12-31")) == ["sports-2019-11-20"]


def test_filters_only_list_newest_first_and_skip_undated(archive: Archive):
    page = archive.search("since:2019-01-01")
    assert not page.ranked and all(h.score is None for h in page.hits)
    dates = [h.post.date for h in page.hits]
    assert dates == sorted(dates, reverse=True) and len(dates) == page.total == 5
    assert "no-date-notice" not in ids(archive.search("2018-01-01..2030-01-01", limit=20))
    assert "no-date-notice" in ids(archive.search("公告"))  # undated posts remain searchable


def test_latest_and_paging(archive: Archive):
    first = archive.latest(limit=2)
    second = archive.latest(limit=2, offset=2)
    assert first.total == second.total == 7 and first.has_next
    assert ids(first)[0] == path_of_latest(archive)
    assert not set(ids(first)) & set(ids(second))
    everything = archive.search("会议", limit=100)
    paged = [pid for off in range(0, everything.total, 2) for pid in ids(archive.search("会议", limit=2, offset=off))]
    assert paged == ids(everything)


def path_of_latest(archive: Archive) -> str:
    from retrieval.loader import path_id

    return path_id("misc/notes.txt")  # 2021-03-01, the newest fixture


@pytest.mark.parametrize("text, total, tokens", [
    ("！！！？？", 0, ()),                                  # punctuation only: nothing to look for
    ("🙂🙂", 0, ()),
    ("'; DROP TABLE posts; --", 0, ("drop", "table", "posts")),  # just words, found nowhere
    ("<b>主题</b>", 2, ("b", "主题", "b")),                 # tags are text: 主题 still finds its posts
    ("-", 0, ()),
    ('"', 7, ()),                                          # an empty phrase: the query is empty, a listing
    ("tag:", 0, ("tag",)),                                 # a key without a value is a word
    ("a" * 256, 0, ("a" * 256,)),
    ("½", 0, ()),                                          # NFKC makes it 1⁄2: no word character of its own
    ("¼ ℅", 0, ()),
    ('"½"', 0, ()),
    ("-½ 教育", 2, ("教育",)),
])
def test_odd_queries_get_exact_answers(archive: Archive, text: str, total: int, tokens: tuple):
    page = archive.search(text)
    assert (page.total, page.tokens) == (total, tokens)


@pytest.mark.parametrize("text", ["0000年", "9999年", "0000-05", "since:9999-12-31", "2019-11-01..9999年",
                                  "until:0001-01-01", "date:1899-12-31", "2101年 教育"])
def test_dates_at_the_edge_of_the_calendar_are_bad_dates(archive: Archive, text: str):
    with pytest.raises(QueryError) as caught:
        archive.search(text)
    assert caught.value.code == "bad_date"
