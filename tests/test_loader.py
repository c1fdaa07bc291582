"""Loading posts: fields, cleaning, dates, and every kind of malformed file skipped with a reason."""

import html
import re
from pathlib import Path
from unittest.mock import patch

import pytest
import yaml
from yaml.reader import Reader
from hypothesis import example, given, settings
from hypothesis import strategies as st

from retrieval import Archive
from retrieval import frontyaml, markup
from retrieval.dates import timezone
from retrieval.frontyaml import simple_mapping
from retrieval.loader import MalformedPost, _FrontMatterLoader, parse_post, path_id
from retrieval.markup import display_title, plain_text, source_url
from retrieval.native import native

from conftest import MALFORMED

TZ = timezone()


def test_seed_post_fields(content: Path):
    archive = Archive.open(content, settle_seconds=0)
    post = archive.get("732b943ded78f99c9f130328fe20b0b3")
    assert post is not None
    assert post.title == "【不忘初心 牢记使命】学校召开主题教育整改落实推进会"
    assert post.raw_title.startswith("南开大学->") and post.raw_title.endswith("| nankai.info")
    assert post.url == "http://news.nankai.edu.cn/ywsd/system/2019/11/13/030036368.shtml"
    assert post.date.isoformat() == "2019-11-13T12:36:56+08:00"
    assert post.tags == ("南开大学",) and post.categories == ("nankai.info", "南开大学")
    assert post.path == "2019/2019-11-13-732b943ded78f99c9f130328fe20b0b3.md"
    assert "![" not in post.body and "http" not in post.body and "**" not in post.body
    assert post.body.startswith("南开新闻网讯（记者 郝静秋")


def test_all_suffixes_recursive_and_fallback_ids(content: Path):
    archive = Archive.open(content, settle_seconds=0)
    ids = set(archive.post_ids())
    assert {"sports-2019-11-20", "ai-conference", "youth-day", "no-date-notice"} <= ids
    assert path_id("misc/notes.txt") in ids  # .txt with front matter, id from its path
    assert path_id("misc/2020-01-15-economy.markdown") in ids
    economy = archive.get(path_id("misc/2020-01-15-economy.markdown"))
    assert economy.url == "https://example.org/economy/2020-01-15"  # from front matter 'url'
    assert economy.tags == ("经济",) and economy.categories == ("财经",)


def test_dates_naive_filename_and_missing(content: Path):
    archive = Archive.open(content, settle_seconds=0)
    assert archive.get("youth-day").date.isoformat() == "2018-05-04T00:00:00+08:00"  # from the file name
    assert archive.get("no-date-notice").date is None
    assert archive.get("ai-conference").date.isoformat() == "2019-12-02T00:00:00+08:00"
    assert archive.stats().undated == 1
    assert "undated: excluded from date filters" in archive.stats().warnings["misc/no-date.md"]


def test_timezone_is_configurable(content: Path):
    archive = Archive.open(content, settle_seconds=0, tz="UTC")
    assert archive.get("732b943ded78f99c9f130328fe20b0b3").date.isoformat() == "2019-11-13T12:36:56+00:00"


def test_markdown_cleaning():
    md = "**粗体**和*斜体*，[链接文字](http://x.org/a)、<span>标签</span>、`代码`\n\n![图](http://x/p.jpg)\n# 标题\n> 引用 &amp; 实体"
    assert plain_text(md) == "粗体和斜体，链接文字、标签、代码\n标题\n引用 & 实体"
    assert source_url("正文\n[转入文章首发地址](http://a.b/c.html)") == "http://a.b/c.html"
    assert display_title("新闻联播->美国高温 | tv.cctv.com") == "美国高温"
    assert display_title("A | B 与 C") == "A | B 与 C"  # a suffix with spaces is part of the title
    assert display_title("快讯 | 新华网") == "快讯"


def test_each_malformed_kind_has_a_reason():
    expected = {
        "bad/bad-yaml.md": "invalid YAML",
        "bad/latin1.md": "not UTF-8",
        "bad/empty.md": "empty file",
        "bad/binary.md": "binary",
        "bad/list-front-matter.md": "not a mapping",
        "bad/title-is-list.md": "'title' is a list",
        "bad/no-front-matter.md": "no YAML front matter",
    }
    for rel, data in MALFORMED.items():
        try:
            parse_post(data, rel, TZ)
        except MalformedPost as exc:
            assert expected[rel] in exc.reason, (rel, exc.reason)
        else:
            raise AssertionError(f"{rel} was accepted")


def test_malformed_files_are_skipped_counted_and_logged(content_with_malformed: Path, caplog):
    caplog.set_level("WARNING")
    archive = Archive.open(content_with_malformed, settle_seconds=0)
    stats = archive.stats()
    assert stats.posts == 7
    assert set(stats.skipped) == set(MALFORMED)
    for rel in MALFORMED:
        assert any(rel in r.getMessage() for r in caplog.records), rel
    assert archive.search("主题教育").total >= 1  # loading went on


def test_duplicate_urlname_is_skipped(content: Path):
    (content / "copy.md").write_bytes((content / "2019/2019-11-20-sports.md").read_bytes())
    archive = Archive.open(content, settle_seconds=0)
    skipped = archive.stats().skipped
    assert len(skipped) == 1 and "duplicate id" in next(iter(skipped.values()))


# ---- the front-matter fast path agrees with YAML ---------------------------------------------

#: Scalars YAML reads as other types, or not at all, beside ordinary text.
TRICKY = ["\xa0", "a\xa0", "yes", "No", "on", "~", "null", "true", "0123", "0x1f", "1_000", "-5", "3.5e3", ".inf", "2019-11-01",
          "2019-11-01 10:00:00", "2019-13-45", "2019-11-01T10:00:00+08:00", "a: b", "a #b", "a:", "#x", "- x",
          "[1, 2]", "{a: 1}", "&anchor", "*alias", "!tag x", "|", ">", "'q'", '"q"', "'it''s'", '"a\\"b"',
          "%x", "@x", "`x", "?x", ":x", "a,b", "a]b", "南开大学->标题 | nankai.info", "温家宝", "<<", "=",
          "x y ", " x", "a\u3000b", "a'b", 'a"b', "a:b", "a#b", "a\u3000", "\u3000a", "x\u2003#y", "ab :", "a: ",
          "2019-11-01 24:00:00", "2019-02-30 10:00:00", "0000-01-01 10:00:00", "2019-11-01  10:00:00",
          "2019-11-01 1:00:00", "2019-11-01 10:00:00.5", "2019-11-01 10:00:00 +08:00", "2019-11-01t10:00:00"]
#: Mostly the characters front matter is made of, YAML's indicators among them.
USUAL = "温家宝新闻abcXY019 -:.#'\"|>[]{},&*!%@`?~_/"
scalar_text = st.one_of(st.sampled_from(TRICKY), st.text(USUAL, max_size=12), st.text("温家宝新闻ab019 -.", max_size=12),
                        st.text(st.characters(blacklist_categories=("Cs",)), max_size=12))
KEYS = ["title", "date", "tags", "categories", "urlname", "no", "1", "a b", "-k", "k:", "#k"]
key_text = st.one_of(st.sampled_from(KEYS[:5]), st.sampled_from(KEYS), st.text(USUAL, min_size=1, max_size=6),
                     st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=6))


@st.composite
def front_matter(draw) -> str:
    lines = []
    for key in draw(st.lists(key_text, max_size=4)):
        if draw(st.booleans()):
            lines.append(f"{key}: {draw(scalar_text)}")
        else:
            lines.append(f"{key}:" + draw(st.sampled_from(["", " "])))
            indent = draw(st.sampled_from(["", "  "]))
            lines += [f"{indent}- {draw(scalar_text)}" for _ in range(draw(st.integers(0, 3)))]
        if draw(st.integers(0, 9)) == 0:
            lines.append(draw(st.sampled_from(["", "# comment", "  more", "---", "\t- x"])))
    return "\n".join(lines)


def yaml_reading(raw: str):
    try:
        return ("ok", yaml.load(raw, Loader=_FrontMatterLoader))  # noqa: S506 (a safe loader)
    except (yaml.YAMLError, ValueError) as exc:
        return ("error", type(exc).__name__)


@given(front_matter())
@settings(max_examples=1500, deadline=None)
def test_the_front_matter_fast_path_reads_what_yaml_reads(raw: str):
    fast = simple_mapping(raw, _FrontMatterLoader)
    if fast is not None:  # (None: the fast path leaves it to YAML)
        assert yaml_reading(raw) == ("ok", fast if fast else None) or (fast == {} and yaml_reading(raw) == ("ok", {}))


@given(front_matter() | st.text(USUAL + "\n \xa0\u3000\t", max_size=40) | st.text(max_size=30))
@settings(max_examples=1500, deadline=None)
def test_the_front_lines_in_c_equal_the_reference(raw: str):
    if native is None:
        pytest.skip("the C extension is not built")
    assert native.front_lines(raw) == frontyaml.front_lines(raw)


def test_the_front_lines_of_the_usual_front_matter():
    raw = ('title: "新闻联播->温家宝出席会议 | tv.cctv.com"\ndate: 2012-11-05 19:22:59  \n\n'
           "urlname: 9c92-s1990\ntags: \n- '温家宝'\n- 领导人\ncategories:\n  - tv.cctv.com\n  - 新闻联播\n")
    expected = [("title", (True, "新闻联播->温家宝出席会议 | tv.cctv.com")), ("date", (False, "2012-11-05 19:22:59")),
                ("urlname", (False, "9c92-s1990")), ("tags", [(True, "温家宝"), (False, "领导人")]),
                ("categories", [(False, "tv.cctv.com"), (False, "新闻联播")])]
    assert frontyaml.front_lines(raw) == expected
    if native is not None:
        assert native.front_lines(raw) == expected


@pytest.mark.parametrize("scalar", TRICKY)
def test_each_tricky_scalar_reads_as_yaml_reads_it(scalar: str):
    for raw in (f"k: {scalar}", f"k: {scalar}  \n", f"k:\n- {scalar}", f"{scalar}: v"):
        fast = simple_mapping(raw, _FrontMatterLoader)
        if fast is not None:
            assert yaml_reading(raw) == ("ok", fast), raw


def test_the_fast_path_takes_the_usual_front_matter():
    raw = ('title: "新闻联播->温家宝出席会议 | tv.cctv.com"\ndate: 2012-11-05 19:22:59\n'
           'urlname: 9c92-s1990\ntags: \n- "温家宝"\n- 领导人\ncategories:\n  - tv.cctv.com\n  - 新闻联播\n')
    assert simple_mapping(raw, _FrontMatterLoader) == yaml_reading(raw)[1] == {
        "title": "新闻联播->温家宝出席会议 | tv.cctv.com", "date": __import__("datetime").datetime(2012, 11, 5, 19, 22, 59),
        "urlname": "9c92-s1990", "tags": ["温家宝", "领导人"], "categories": ["tv.cctv.com", "新闻联播"]}


def test_the_fast_path_leaves_to_yaml_what_yaml_would_refuse_or_read_otherwise():
    """Every character YAML's reader refuses, and the tab, the line breaks other than ``\\n``
    and the byte-order mark, which the fast path leaves to YAML (one pattern for all of them)."""
    for code in range(0x10000):
        c = chr(code)
        if c != "\n" and not 0xD800 <= code < 0xE000:
            refused = c in "\t\r\x85\u2028\u2029\ufeff" or bool(Reader.NON_PRINTABLE.search(c))
            if refused:
                assert simple_mapping(f"k: a{c}b", _FrontMatterLoader) is None, hex(code)
            assert bool(frontyaml._UNUSUAL.search(c)) == refused, hex(code)


def test_the_usual_date_reads_as_yaml_reads_it():
    for text in ("2019-11-01 10:00:00", "2019-02-29 10:00:00", "2020-02-29 23:59:59", "2019-11-01 10:60:00"):
        raw = f"date: {text}\n"
        assert simple_mapping(raw, _FrontMatterLoader) == yaml_reading(raw)[1], text
    assert simple_mapping("date: 2019-02-29 10:00:00", _FrontMatterLoader) == {"date": "2019-02-29 10:00:00"}


def test_the_fast_path_keeps_a_bounded_number_of_scalars():
    """Scalars recur (keys, tags), so their YAML values are kept; a million distinct dates
    and ids must not make that a leak."""
    known = frontyaml._scalars(_FrontMatterLoader)._known
    for i in range(frontyaml.KNOWN_SCALARS * 2 + 5):
        raw = f"urlname: id{i}\ndate: 2012-11-05\nn: {i}\n"
        assert simple_mapping(raw, _FrontMatterLoader) == {"urlname": f"id{i}", "date": __import__("datetime").date(2012, 11, 5), "n": i}
        assert len(known) <= frontyaml.KNOWN_SCALARS
    assert simple_mapping("no: 0x1A\n", _FrontMatterLoader) == yaml_reading("no: 0x1A\n")[1] == {False: 26}


# ---- plain_text skips the passes that cannot match, and that changes nothing -----------------


def every_pass(markdown: str) -> str:
    """plain_text with every pass run, as it was before the passes had guards."""
    text = markdown
    for pattern, replacement, _ in markup._PASSES:
        text = pattern.sub(replacement, text)
    text = html.unescape(text)
    lines = (markup._SPACES.sub(" ", line).strip() for line in text.splitlines())
    return re.sub(r"\n\s*\n+", "\n", "\n".join(lines)).strip()


MARKDOWN = "新闻abc 12.-*+_#>`~![]():/<!-->{%}&amp;\n\t\u3000\xa0\r\u2028x"


@given(st.text(MARKDOWN, max_size=60) | st.text(max_size=40))
@example("_a ~~b~~")  # (a pass's second needle: its first one's characters are there, not it)
@example("***粗** 体*")  # (the second emphasis pass: nested marks)
@example("见 http://a-b.cn\n1. 第一")  # (the only "-" goes with the link: a list mark after it)
@settings(max_examples=800, deadline=None)
def test_plain_text_guards_change_nothing(markdown: str):
    assert markup.plain_text(markdown) == every_pass(markdown)


CODE_MARKDOWN = "新闻ab `~{%}-\n raw codeblock endcodeblock endraw"


@given(st.text(CODE_MARKDOWN, max_size=80) | st.sampled_from([
    "a\n```py\nx = 1\n```\nb", "a\n~~~\ncode\n~~~", "{% codeblock %}x{% endcodeblock %}b",
    "{% raw %}{{ x }}{% endraw %}", "``not a fence``", "a {% img x %} b"]))
@settings(max_examples=600, deadline=None)
def test_split_code_guard_changes_nothing(markdown: str):
    """A text without a fence or a tag opener comes back as it is, which is what the pattern
    itself gives it (with the needle "", found in every text, the pattern always runs)."""
    with patch.object(markup, "_CODE_NEEDLES", ("",)):
        unguarded = markup.split_code(markdown)
    assert markup.split_code(markdown) == unguarded


def test_tidy_lines_keeps_the_text_of_each_line():
    assert markup.tidy_lines(" \u3000a\xa0\xa0b\t c \r\n\r\n\u2028 新 闻\u2003\x85\n") == "a b c\n新 闻"
