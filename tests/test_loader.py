"""Loading posts: fields, cleaning, dates, and every kind of malformed file skipped with a reason."""

from pathlib import Path

from retrieval import Archive
from retrieval.dates import timezone
from retrieval.loader import MalformedPost, parse_post, path_id
from retrieval.markup import display_title, plain_text, source_url

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
