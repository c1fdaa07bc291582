"""A Hexo site around the archive: its settings, what it publishes, and its posts' addresses.

The rules here are Hexo's own (hexo 8, hexo-util 3), so that a post's link is the page
``hexo generate`` writes for it:

- the site is the content directory or the nearest parent holding ``_config.yml``; pointed at
  the site (or its ``source``), the archive is ``source/_posts``;
- a post's *slug* is its path under ``_posts`` without the extension, or the ``:title`` part
  of ``new_post_name`` when the file name follows that pattern (``:year-:month-:day-:title.md``);
- its path is the front matter's ``permalink`` when it has one, else ``permalink`` from
  ``_config.yml`` with ``:year :month :day :i_month :i_day :hour :minute :second :timestamp
  :title :name :post_title :id :hash :category`` and any front-matter field filled in
  (``permalink_defaults`` for the fields a post lacks, ``undefined`` as Hexo writes it when
  neither has it), in the site's ``timezone``;
- its address is ``url`` + ``/`` + path, percent-encoded like ``encodeURI``, with
  ``pretty_urls`` dropping a trailing ``index.html`` / ``.html``.

Without ``_config.yml``, ``ARCHIVE_SITE_URL`` and ``ARCHIVE_PERMALINK`` give the same
computation for any archive. :func:`published` says whether Hexo would publish a post at all.
"""

from __future__ import annotations

import hashlib
import json
import logging
import posixpath
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
from urllib.parse import quote, unquote

import yaml

log = logging.getLogger(__name__)

CONFIG = "_config.yml"
POSTS = "_posts"
DEFAULT_PERMALINK = ":year/:month/:day/:title/"
_PLACEHOLDER = re.compile(r":(\w*[^_\W])")  # hexo-util's Permalink rule
_SPECIAL = re.compile(r"""[\s~`!@#$%^&*()\-_+=\[\]{}|\\;:"'<>,.?/]+""")
_CONTROL = re.compile(r"[\x00-\x1f]")
#: encodeURI leaves these as they are (besides letters and digits).
_URI_SAFE = ";,/?:@&=+$-_.!~*'()#"


class SiteError(ValueError):
    """A ``_config.yml`` or site setting that cannot be used; the message says which."""


def slugize(text: str, transform: int = 0) -> str:
    """hexo-util's ``slugize``: diacritics dropped, control characters removed, runs of
    spaces and punctuation turned into one ``-``, trimmed; ``transform`` 1 lower-cases, 2
    upper-cases. Chinese and other letters stay as they are."""
    text = "".join(_undiacritic(ch) for ch in text)
    text = _SPECIAL.sub("-", _CONTROL.sub("", text)).strip("-")
    text = re.sub(r"-{2,}", "-", text)
    return text.lower() if transform == 1 else text.upper() if transform == 2 else text


def _undiacritic(ch: str) -> str:
    if ch.isascii() or not ch.isalpha():
        return ch
    base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
    return base if base.isascii() and base.isalpha() else ch


def encode_uri(path: str) -> str:
    """JavaScript's ``encodeURI(decodeURI(path))``: non-ASCII and unsafe characters
    percent-encoded as UTF-8, existing escapes kept."""
    return quote(unquote(path), safe=_URI_SAFE)


@dataclass(frozen=True)
class Site:
    """The settings that decide what a Hexo site publishes and where."""

    url: str | None = None
    permalink: str = DEFAULT_PERMALINK
    permalink_defaults: dict = field(default_factory=dict)
    trailing_index: bool = True
    trailing_html: bool = True
    new_post_name: str = ":title.md"
    timezone: str | None = None
    future: bool = True
    default_category: str = "uncategorized"
    category_map: dict = field(default_factory=dict)
    filename_case: int = 0
    post_asset_folder: bool = False
    #: Where the site's ``_config.yml`` is (None for a site given by settings alone).
    root: Path | None = None
    #: The content directory's path under ``_posts`` ("" when it is ``_posts`` itself).
    posts_prefix: str = ""

    @property
    def fingerprint(self) -> str:
        """Identifies everything that changes posts' links or publication (for the index)."""
        fields = {k: v for k, v in self.__dict__.items() if k != "root"}
        return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:16]

    # ---- paths and addresses ----------------------------------------------------------------
    def slug(self, rel: str) -> tuple[str, dict[str, str]]:
        """The post's slug, and what its file name says by ``new_post_name`` (year, month…)."""
        path = posixpath.splitext(self.posts_prefix + rel)[0]
        pattern = posixpath.splitext(self.new_post_name)[0]
        info = _parse_by_pattern(pattern, path)
        if info is None:
            return slugize(path), {}
        if "title" not in info:
            return slugize(path), info
        return info.pop("title"), info

    def page_url(self, meta: dict, slug: str, title: str, when: datetime, categories: list[list[str]]) -> str | None:
        """The post's page on the site, or None when the site's address is not known (or
        the permalink needs a value this post cannot give, such as Hexo's random ``:id``)."""
        if not self.url:
            return None
        own = meta.get("permalink")
        path = own.strip() if isinstance(own, str) and own.strip() else self._fill(meta, slug, title, when, categories)
        if path is None:
            return None
        if self.post_asset_folder and not path.endswith(("/", ".html")):
            path += "/"
        full = self.url + encode_uri(re.sub(r"/{2,}", "/", "/" + path))
        if not self.trailing_index:
            full = re.sub(r"index\.html$", "", full)
        if not self.trailing_html and not full.endswith("index.html"):
            full = re.sub(r"\.html$", "", full)
        return full

    def _fill(self, meta: dict, slug: str, title: str, when: datetime, categories: list[list[str]]) -> str | None:
        values: dict[str, object] = {
            "title": slug,
            "name": posixpath.basename(slug),
            "post_title": slugize(title, 1),
            "year": f"{when.year:04d}", "month": f"{when.month:02d}", "day": f"{when.day:02d}",
            "hour": f"{when.hour:02d}", "minute": f"{when.minute:02d}", "second": f"{when.second:02d}",
            "i_month": str(when.month), "i_day": str(when.day), "timestamp": str(int(when.timestamp())),
            "hash": hashlib.sha1(f"{slug}{int(when.timestamp())}".encode()).hexdigest()[:12],
            "category": self._category_slug(categories[-1]) if categories else self.default_category,
        }
        if meta.get("id") is not None:
            values["id"] = meta["id"]
        for key, value in meta.items():
            values.setdefault(str(key), value)
        for key, value in self.permalink_defaults.items():
            values.setdefault(str(key), value)
        if "id" in _PLACEHOLDER.findall(self.permalink) and "id" not in values:
            log.debug("the permalink uses :id, which Hexo makes up at random for a post without one")
            return None
        return _PLACEHOLDER.sub(lambda m: _js_string(values.get(m[1])), self.permalink)

    def _category_slug(self, hierarchy: list[str]) -> str:
        """A nested category's slug, as Hexo's Category model builds it: ``父/子``."""
        return "/".join(slugize(str(self.category_map.get(name, name)), self.filename_case) for name in hierarchy)


def _js_string(value: object) -> str:
    """How JavaScript writes a value into a string, for what YAML gives."""
    if value is None:
        return "undefined"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join("" if v is None else _js_string(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _parse_by_pattern(pattern: str, path: str) -> dict[str, str] | None:
    """hexo-util's ``Permalink.parse`` with the segments Hexo gives ``new_post_name``."""
    segments = {"year": r"(\d{4})", "month": r"(\d{2})", "day": r"(\d{2})", "i_month": r"(\d{1,2})",
                "i_day": r"(\d{1,2})", "hash": r"([0-9a-f]{12})"}
    names: list[str] = []

    def group(m: re.Match) -> str:
        names.append(m[1])
        return segments.get(m[1], "(.+?)")

    regex = _PLACEHOLDER.sub(group, re.escape(pattern).replace(r"\:", ":"))
    match = re.fullmatch(regex, path)
    return dict(zip(names, match.groups())) if match else None


# ---- finding and reading the site -------------------------------------------------------------
def find_site(content: Path, url: str | None = None, permalink: str | None = None) -> tuple[Site | None, Path]:
    """The site around ``content`` (the directory or a parent with ``_config.yml`` whose
    ``source`` holds it) and the directory whose posts to index. ``url``/``permalink`` (the
    ``ARCHIVE_SITE_URL``/``ARCHIVE_PERMALINK`` settings) override the config, or make a site of
    a plain archive. Raises :class:`SiteError` for a config that cannot be read."""
    content = content.resolve()
    for root in (content, *content.parents):
        config = root / CONFIG
        if not config.is_file():
            continue
        settings = _read_config(config)
        source = (root / str(settings.get("source_dir") or "source")).resolve()
        posts = source / POSTS
        if content in (root, source):
            scan = posts
        elif content.is_relative_to(posts):
            scan = content
        elif content.is_relative_to(source):
            raise SiteError(f"{content} is in the Hexo site's source but not in {posts}: Hexo publishes "
                            "only what is in _posts (drafts never); point the archive at the site or _posts")
        else:
            continue
        site = _site(settings, root, scan.relative_to(posts).as_posix(), url, permalink)
        log.info("Hexo site %s: posts in %s, links %s%s", root, scan, site.url or "(no url)", site.permalink)
        return site, scan
    if url:
        return Site(url=url.rstrip("/"), permalink=permalink or DEFAULT_PERMALINK), content
    return None, content


def _read_config(config: Path) -> dict:
    try:
        settings = yaml.safe_load(config.read_text("utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise SiteError(f"cannot read {config}: {str(exc).splitlines()[0] if str(exc) else exc}") from None
    if not isinstance(settings, dict):
        raise SiteError(f"{config} is not a mapping of settings")
    return settings


def _site(settings: dict, root: Path, prefix: str, url: str | None, permalink: str | None) -> Site:
    def get(key: str, kind: type, default):
        value = settings.get(key, default)
        if value is None:
            return default
        if not isinstance(value, kind):
            raise SiteError(f"{root / CONFIG}: '{key}' should be a {kind.__name__}, not {value!r}")
        return value

    pretty = get("pretty_urls", dict, {})
    site_url = (url or get("url", str, "http://example.com")).rstrip("/")
    if not site_url.startswith(("http://", "https://")):
        raise SiteError(f"{root / CONFIG}: 'url' should be an http(s) address, not {site_url!r}")
    return Site(
        url=site_url,
        permalink=permalink or get("permalink", str, DEFAULT_PERMALINK),
        permalink_defaults=get("permalink_defaults", dict, {}),
        trailing_index=pretty.get("trailing_index", True) is not False,
        trailing_html=pretty.get("trailing_html", True) is not False,
        new_post_name=get("new_post_name", str, ":title.md"),
        timezone=get("timezone", str, "") or None,
        future=settings.get("future", True) is not False,
        default_category=str(settings.get("default_category", "uncategorized")),
        category_map=get("category_map", dict, {}),
        filename_case=int(settings.get("filename_case", 0) or 0),
        post_asset_folder=bool(settings.get("post_asset_folder", False)),
        root=root,
        posts_prefix=f"{prefix}/" if prefix not in ("", ".") else "",
    )


def category_hierarchies(value: object) -> list[list[str]]:
    """Hexo's ``categories``: a name, a list (one hierarchy: ``[父, 子]`` is 子 under 父), or a
    list holding lists (several hierarchies); returned as hierarchies of names."""
    def names(items: list) -> list[str]:
        return [str(x) for x in items if isinstance(x, (str, int, float)) and not isinstance(x, bool) and str(x).strip()]

    if value is None or value == "":
        return []
    if isinstance(value, list) and any(isinstance(v, list) for v in value):
        return [h for h in (names(v if isinstance(v, list) else [v]) for v in value) if h]
    hierarchy = names(value if isinstance(value, list) else [value])
    return [hierarchy] if hierarchy else []


def published(meta: dict, when: datetime | None, site: Site | None, now: datetime) -> tuple[str | None, float | None]:
    """Why Hexo would not publish the post (None when it would), and for a reason that time
    removes, when (epoch seconds) it will: ``published: false`` never (until the file changes);
    a future date with ``future: false`` at that date."""
    if meta.get("published", True) is False:
        return "unpublished draft (published: false)", None
    if site is not None and not site.future and when is not None and when > now:
        return f"dated in the future ({when:%Y-%m-%d %H:%M}); Hexo publishes it then (future: false)", when.timestamp()
    return None, None


def site_timezone(site: Site | None, default: tzinfo) -> tzinfo:
    """The zone front-matter dates are read in: the site's ``timezone``, else ``default``."""
    if site is None or not site.timezone:
        return default
    try:
        return ZoneInfo(site.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise SiteError(f"_config.yml: unknown timezone {site.timezone!r}") from None
