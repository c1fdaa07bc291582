"""A real Hexo site as the archive, checked against the real Hexo (from npm): every link the
bot gives is the page ``hexo generate`` wrote for that post, and nothing Hexo keeps back (drafts,
``published: false``, hidden files, future posts with ``future: false``) is ever indexed."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote

import pytest
import yaml

from bot.render import HTML, render_post
from retrieval import Archive

HERE = Path(__file__).parent / "hexo"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "archive-bot-tests"


@pytest.fixture(scope="session")
def hexo() -> Path:
    """The node_modules of the Hexo pinned in tests/hexo/package.json, installed once into a
    cache directory. Skipped where npm is missing, except in CI, where it must run."""
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        if os.environ.get("CI"):
            pytest.fail("CI must run the Hexo tests, but node/npm are not installed")
        pytest.skip("node and npm are not installed: the Hexo tests build a site with the real Hexo")
    manifest = (HERE / "package.json").read_bytes()
    target = CACHE / f"hexo-{hashlib.sha256(manifest).hexdigest()[:12]}"
    modules = target / "node_modules"
    if not (modules / "hexo" / "package.json").is_file():
        target.mkdir(parents=True, exist_ok=True)
        (target / "package.json").write_bytes(manifest)
        subprocess.run([npm, "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=target, check=True,
                       timeout=600, capture_output=True)
    return modules


def front(meta: dict, body: str) -> str:
    return "---\n" + yaml.safe_dump(meta, allow_unicode=True, sort_keys=False) + "---\n" + body + "\n"


COMMON = {
    "hello-world.md": ({"title": "你好，世界 Hello World!", "date": "2019-11-13 10:00:00", "urlname": "hello",
                        "categories": ["父", "子"], "tags": ["南开", "教育"]},
                       "正文开头，主题教育。\n\n{% blockquote 作者, 来源 %}引用的名言{% endblockquote %}\n\n<!-- more -->\n\n"
                       "```python\nprint('代码专用词')\n```\n\n更多<em>内容</em>。{% asset_img a.jpg 图片说明 %}"),
    "2019/nested post.md": ({"title": "子目录：文章", "date": "2019-12-01 23:30:00", "urlname": "nested",
                             "categories": "单一分类", "tags": "单标签"}, "嵌套目录里的文章。"),
    "own-permalink.md": ({"title": "自定义地址", "date": "2019-12-05 08:00:00", "urlname": "own",
                          "permalink": "special/own-page/"}, "这篇有自己的地址。"),
    "with-source.md": ({"title": "转载文章", "date": "2019-12-06 08:00:00", "urlname": "sourced",
                        "description": "作者写的摘要。"},
                       "转载内容。\n\n[转入文章首发地址](http://source.example.com/a.html)"),
    "draft.md": ({"title": "草稿", "date": "2019-12-07 08:00:00", "urlname": "draft", "published": False}, "草稿秘密词。"),
    "_hidden.md": ({"title": "隐藏", "date": "2019-12-08 08:00:00", "urlname": "hidden"}, "隐藏秘密词。"),
    ".dotted.md": ({"title": "点文件", "date": "2019-12-08 08:00:00", "urlname": "dotted"}, "隐藏秘密词。"),
    "sub/_private/p.md": ({"title": "私有目录", "date": "2019-12-08 08:00:00", "urlname": "private"}, "隐藏秘密词。"),
}
DRAFTS = {"secret.md": ({"title": "草稿箱", "urlname": "secret"}, "草稿箱秘密词。")}

SITES = {
    "date-title": {"url": "http://example.com/blog", "root": "/blog/", "permalink": ":year/:month/:day/:title/",
                   "timezone": "Asia/Shanghai"},
    "category-post-title": {"url": "https://news.example.org", "permalink": ":category/:post_title.html",
                            "pretty_urls": {"trailing_html": False}, "timezone": "Asia/Shanghai",
                            "default_category": "未分类"},
    "front-matter-field": {"url": "https://example.net/site", "permalink": "news/:urlname/:i_month-:i_day/",
                           "pretty_urls": {"trailing_index": False}, "timezone": "America/New_York",
                           "permalink_defaults": {"urlname": "none"}},
    "hash-and-file-name-dates": {"url": "http://example.com", "permalink": "archives/:hash/:name.html",
                                 "new_post_name": ":year-:month-:day-:title.md", "timezone": "UTC", "future": False},
}
ONLY = {
    "hash-and-file-name-dates": {
        "2020-01-02-dated-by-name.md": ({"title": "日期在文件名里", "urlname": "by-name"}, "按文件名定日期。"),
        "2099-01-01-later.md": ({"title": "未来的文章", "date": "2099-01-01 08:00:00", "urlname": "later"}, "未来秘密词。"),
    },
}
NEVER = ("草稿秘密词", "草稿箱秘密词", "隐藏秘密词", "未来秘密词")


def make_site(root: Path, name: str, modules: Path) -> Path:
    config = {"title": "测试站点", "source_dir": "source", "public_dir": "public", **SITES[name]}
    (root / "_config.yml").parent.mkdir(parents=True, exist_ok=True)
    (root / "_config.yml").write_text(yaml.safe_dump(config, allow_unicode=True), "utf-8")
    plugins = json.loads((HERE / "package.json").read_text())["dependencies"]  # Hexo loads what a site depends on
    (root / "package.json").write_text(json.dumps({"name": "site", "private": True, "hexo": {"version": "8.1.2"},
                                                   "dependencies": plugins}))
    (root / "node_modules").symlink_to(modules)
    for folder, posts in (("_posts", {**COMMON, **ONLY.get(name, {})}), ("_drafts", DRAFTS)):
        for rel, (meta, body) in posts.items():
            path = root / "source" / folder / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(front(meta, body), "utf-8")
    return root


def node_env(name: str, modules: Path) -> dict[str, str]:
    """Hexo formats a permalink's date in the time zone of the machine that builds the site:
    here, as where a site's author builds it, that is the site's own."""
    return {**os.environ, "NODE_PATH": str(modules), "TZ": SITES[name]["timezone"]}


def hexo_posts(site: Path, env: dict[str, str]) -> dict[str, str]:
    """{source file under _posts: permalink} as Hexo itself computes them."""
    out = subprocess.run(["node", str(HERE / "permalinks.js")], cwd=site, env=env,
                         check=True, capture_output=True, text=True, timeout=120).stdout
    return {p["source"].removeprefix("_posts/"): p["permalink"] for p in json.loads(out)}


def generated_file(site: Path, url: str, site_url: str) -> Path:
    """The file under public/ that serves ``url``."""
    assert url.startswith(site_url + "/"), url
    path = unquote(url[len(site_url) + 1:])
    if path.endswith("/") or not path:
        path += "index.html"
    elif not path.endswith(".html"):
        path += ".html"  # pretty_urls.trailing_html: false drops it from links, not from files
    return site / "public" / path


@pytest.mark.parametrize("name", list(SITES))
def test_links_are_the_pages_hexo_generates_and_nothing_unpublished_is_indexed(hexo: Path, tmp_path: Path, name: str):
    site = make_site(tmp_path / "site", name, hexo)
    env = node_env(name, hexo)
    subprocess.run(["node", str(hexo / "hexo" / "bin" / "hexo"), "generate", "--silent"], cwd=site, check=True,
                   timeout=300, capture_output=True, env=env)
    expected = hexo_posts(site, env)
    assert {"hello-world.md", "own-permalink.md", "with-source.md"} <= expected.keys()
    for content in (site, site / "source" / "_posts"):  # the site itself, or its _posts
        archive = Archive.open(content, None, settle_seconds=0)
        ours = {archive.get(pid).path: archive.get(pid).page_url for pid in archive.post_ids()}
        assert ours == expected
        for url in ours.values():
            assert generated_file(site, url, SITES[name]["url"]).is_file(), url
        for word in NEVER:
            assert archive.search(f'"{word}"').total == 0, word
        skipped = archive.stats().skipped
        assert skipped["draft.md"] == "unpublished draft (published: false)"
        if name == "hash-and-file-name-dates":
            assert skipped["2099-01-01-later.md"].startswith("dated in the future (2099-01-01 08:00)")
            assert archive.get("by-name").date.isoformat() == "2020-01-02T00:00:00+00:00"


def test_hexo_text_front_matter_and_links(tmp_path: Path):
    """No Hexo needed: how a site's posts read (the site's _config.yml alone decides)."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "_config.yml").write_text(yaml.safe_dump(SITES["date-title"]), "utf-8")
    for rel, (meta, body) in COMMON.items():
        path = site / "source" / "_posts" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(front(meta, body), "utf-8")
    archive = Archive.open(site, None, settle_seconds=0)
    hello = archive.get("hello")
    assert hello.page_url == "http://example.com/blog/2019/11/13/hello-world/" and hello.link == hello.page_url
    assert hello.body == "正文开头，主题教育。\n引用的名言\n更多内容。"  # quote kept; more, tags, code gone
    assert hello.code == "print('代码专用词')"
    hit = archive.search("代码专用词").hits[0]  # code is searchable…
    assert hit.post.id == "hello" and "print" not in hit.summary  # …but never shown
    assert hello.categories == ("父", "子") and hello.tags == ("南开", "教育")
    for query in ("cat:父", "cat:子", "tag:南开"):
        assert [h.post.id for h in archive.search(query).hits] == ["hello"], query
    nested = archive.get("nested")
    assert nested.categories == ("单一分类",) and nested.tags == ("单标签",)
    assert nested.date.isoformat() == "2019-12-01T23:30:00+08:00"  # the site's time zone
    sourced = archive.get("sourced")
    assert sourced.link == "http://source.example.com/a.html" != sourced.page_url
    detail = render_post(HTML, sourced, "zh").text
    assert '<a href="http://source.example.com/a.html">原文</a> · <a href="http://example.com/blog/2019/12/06/with-source/">本站</a>' in detail
    assert "作者写的摘要。" in detail  # the description leads
    assert archive.get("own").page_url == "http://example.com/blog/special/own-page/"


def test_settings_give_a_plain_archive_its_page_links(content: Path):
    archive = Archive.open(content, None, settle_seconds=0, site_url="https://news.example.com/",
                           permalink="p/:year/:title.html")
    sports = archive.get("sports-2019-11-20")
    assert sports.page_url == "https://news.example.com/p/2019/2019/2019-11-20-sports.html"
    assert sports.link == sports.url  # the original article still comes first


def test_a_config_that_is_not_hexo_settings_is_a_clear_error(tmp_path: Path):
    from retrieval import ArchiveError

    (tmp_path / "_config.yml").write_text("- just\n- a list\n")
    (tmp_path / "source" / "_posts").mkdir(parents=True)
    with pytest.raises(ArchiveError, match="is not a mapping of settings"):
        Archive.open(tmp_path, None)
    (tmp_path / "_config.yml").write_text("url: ftp://x\n")
    with pytest.raises(ArchiveError, match="'url' should be an http"):
        Archive.open(tmp_path, None)


def test_the_drafts_folder_is_refused_as_an_archive(tmp_path: Path):
    from retrieval import ArchiveError

    (tmp_path / "_config.yml").write_text("url: http://example.com\n")
    (tmp_path / "source" / "_drafts").mkdir(parents=True)
    with pytest.raises(ArchiveError, match="Hexo publishes only what is in _posts"):
        Archive.open(tmp_path / "source" / "_drafts", None)
