"""Query-biased summaries and lead summaries."""

import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from retrieval import Archive
from retrieval.summary import lead_summary, match_spans, query_summary, split_sentences, strip_dateline


def test_sentences_and_datelines():
    assert split_sentences("一。二！三？四；五\n六") == ["一。", "二！", "三？", "四；", "五", "六"]
    assert split_sentences("好。。\n\n  ！再见 \n") == ["好。", "。", "！", "再见"]
    assert strip_dateline("南开新闻网讯（记者 郝静秋 摄影 宗琪琪）根据中央要求").startswith("根据")
    assert strip_dateline("新华社北京11月13日电（记者张三）今天").startswith("今天")
    assert strip_dateline("中国网络电视台消息：美国").startswith("美国")
    assert strip_dateline("普通的第一句话。") == "普通的第一句话。"


def test_lead_summary_skips_boilerplate_and_is_short():
    body = "南开新闻网讯（记者 王明）第一句话很重要。第二句。" + "很长的句子" * 40 + "。\n（责任编辑：易佳）"
    s = lead_summary(body)
    assert s.startswith("第一句话很重要。第二句。") and "记者" not in s
    assert len(s) <= 120


def test_query_summary_picks_covering_sentences_and_marks_terms():
    body = "开头与查询无关。这里说到人工智能。中间也无关。天津举办人工智能大会，AI 是重点。结尾。"
    s = query_summary(body, ["人工智能", "天津", "ai"], {"天津": 2.0, "人工智能": 1.0, "ai": 1.0})
    assert "天津举办人工智能大会" in s and "开头" not in s
    marked = [s[a:b] for a, b in s.spans]
    assert {"天津", "人工智能", "AI"} <= set(marked)
    assert len(s) <= 120


def test_spans_are_whole_words_for_latin_and_case_insensitive():
    text = "Said AI said ai; Python3 and python."
    assert [text[a:b] for a, b in match_spans(text, ["ai", "python"])] == ["AI", "ai", "python"]
    wide = "全角ＡＩ测试"
    assert [wide[a:b] for a, b in match_spans(wide, ["ai"])] == ["ＡＩ"]


def test_long_sentences_are_trimmed_around_the_match():
    body = "无关" * 100 + "关键词出现在这里" + "无关" * 100 + "。"
    s = query_summary(body, ["关键词"], {})
    assert "关键词" in s and len(s) <= 120 and s.startswith("…") and s.endswith("…")
    assert s[s.spans[0][0] : s.spans[0][1]] == "关键词"


def test_hits_carry_summaries(content: Path):
    archive = Archive.open(content, settle_seconds=0)
    hit = archive.search("张国辉").hits[0]
    assert "张国辉" in hit.summary and hit.summary.spans
    listing = archive.search("since:2019-11-15").hits[0]
    assert not listing.summary.startswith("南开新闻网讯")


#: Sentences as they were first defined: split right after each end mark and at line breaks.
_SPLIT_BETWEEN = re.compile(r"(?<=[。！？；!?;])|\n+")


@given(st.text("一二 。！？；!?;\n\r\tab", max_size=40) | st.text(max_size=40))
@settings(max_examples=1000, deadline=None)
def test_sentences_are_what_splitting_between_them_gives(text: str):
    assert split_sentences(text) == [s.strip() for s in _SPLIT_BETWEEN.split(text) if s and s.strip()]
