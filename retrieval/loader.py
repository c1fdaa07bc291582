"""Reading post files: parsing with python-frontmatter, and reasons for skipping."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone, tzinfo
from pathlib import Path

import frontmatter
import yaml

from .dates import coerce_front_matter_date, date_from_filename
from .frontyaml import simple_mapping
from .hexo import Site, category_hierarchies, published, site_timezone
from .markup import display_title, plain_text, source_url, split_code
from .post import Post

log = logging.getLogger(__name__)

MAX_POST_BYTES = 5 * 1024 * 1024
_URL_KEYS = ("url", "link", "source")
_YAML = frontmatter.YAMLHandler()


class _FrontMatterLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """YAML's safe loader (the C one when PyYAML has it) that keeps a timestamp it cannot
    build (``2019-13-45``) as its text, so the post stays, undated with a warning, instead of
    failing as a whole."""


def _timestamp_or_text(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> object:
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except (ValueError, OverflowError):
        return loader.construct_scalar(node)


_FrontMatterLoader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_or_text)


class MalformedPost(ValueError):
    """A file that cannot be read as a post; ``reason`` says why, for logs and ``stats``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True)
class ParsedPost:
    """A post and the warnings met while reading it (e.g. it has no date)."""

    post: Post
    warnings: list[str] = field(default_factory=list)


def _decode(data: bytes) -> str:
    if not data.strip():
        raise MalformedPost("empty file")
    if b"\x00" in data:
        raise MalformedPost("binary file (contains NUL bytes)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MalformedPost(f"not UTF-8 text (byte {exc.start})") from None


def _front_matter(text: str) -> tuple[dict, str]:
    if not _YAML.detect(text):
        raise MalformedPost("no YAML front matter (expected a '---' block at the top)")
    try:
        raw, content = _YAML.split(text)
        meta = simple_mapping(raw, _FrontMatterLoader)
        if meta is None:
            meta = yaml.load(raw, Loader=_FrontMatterLoader)  # noqa: S506 (a safe loader)
    except (yaml.YAMLError, ValueError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MalformedPost(f"invalid YAML front matter: {first_line}") from None
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise MalformedPost(f"front matter is a {type(meta).__name__}, not a mapping")
    return meta, content


def _scalar(meta: dict, key: str) -> str | None:
    value = meta.get(key)
    if value is None:
        return None
    if isinstance(value, (dict, list, tuple, set)):
        raise MalformedPost(f"front matter '{key}' is a {type(value).__name__}, not text")
    text = str(value).strip()
    return text or None


def _labels(meta: dict, key: str, warnings: list[str]) -> tuple[str, ...]:
    value = meta.get(key)
    if value is None:
        return ()
    items = value if isinstance(value, (list, tuple)) else [value]
    labels: list[str] = []
    for item in items:
        if isinstance(item, (str, int, float)) and not isinstance(item, bool) and str(item).strip():
            labels.append(str(item).strip())
        elif item is not None:
            warnings.append(f"ignored a {type(item).__name__} in '{key}'")
    return tuple(dict.fromkeys(labels))


def path_id(rel_path: str) -> str:
    """Stable id for a post without ``urlname``: a hash of its relative path."""
    return hashlib.sha1(rel_path.encode("utf-8")).hexdigest()[:16]


def too_large() -> str:
    """The reason given for a file over :data:`MAX_POST_BYTES`."""
    return f"file larger than {MAX_POST_BYTES // (1024 * 1024)} MiB"


class Unpublished(MalformedPost):
    """A post Hexo would not publish (a draft, or dated in the future with ``future: false``);
    ``recheck_at`` (epoch seconds) is when that changes by itself, if it does."""

    def __init__(self, reason: str, recheck_at: float | None) -> None:
        super().__init__(reason)
        self.recheck_at = recheck_at


def _links(meta: dict, content: str, warnings: list[str]) -> tuple[str | None, str | None]:
    """The original article's address (the closing link, or a url/link/source field) and an
    absolute front-matter ``permalink`` (which Hexo uses as the page's address as it is)."""
    url = source_url(content)
    for key in _URL_KEYS:
        if url is None:
            url = _scalar(meta, key)
    if url is not None and not url.lower().startswith(("http://", "https://")):
        warnings.append(f"ignored a link that is not http(s): {url[:80]!r}")
        url = None
    own = meta.get("permalink")
    absolute = own.strip() if isinstance(own, str) and own.strip().lower().startswith(("http://", "https://")) else None
    return url, absolute


def _date(meta: dict, rel_path: str, tz: tzinfo, site: Site | None, info: dict[str, str],
          file_time: datetime | None, warnings: list[str]) -> datetime | None:
    """Front matter ``date``; else the date in the file name (Hexo's ``new_post_name`` first);
    else, on a Hexo site, the file's time, as Hexo does."""
    when = coerce_front_matter_date(meta.get("date"), tz)
    if when is None and meta.get("date") not in (None, ""):
        warnings.append(f"unreadable date {meta.get('date')!r}")
    if when is None and info.get("year") and (info.get("month") or info.get("i_month")) and (info.get("day") or info.get("i_day")):
        try:
            when = datetime(int(info["year"]), int(info.get("month") or info["i_month"]),
                            int(info.get("day") or info["i_day"]), tzinfo=tz)
        except ValueError:
            when = None
    if when is None:
        when = date_from_filename(Path(rel_path).name, tz)
    if when is None and site is not None and file_time is not None:
        when = file_time.astimezone(tz)
        warnings.append("no date: using the file's modification time, as Hexo does")
    if when is None:
        warnings.append("undated: excluded from date filters")
    return when


def parse_post(data: bytes, rel_path: str, tz: tzinfo, site: Site | None = None, *,
               file_time: datetime | None = None, now: datetime | None = None) -> ParsedPost:
    """Parse one file's bytes into a post; raises :class:`MalformedPost` with the reason (and
    :class:`Unpublished` for a post Hexo would not publish). With a ``site`` (see
    :mod:`retrieval.hexo`) dates are read in its time zone and the post gets its page's address."""
    if len(data) > MAX_POST_BYTES:
        raise MalformedPost(too_large())
    meta, content = _front_matter(_decode(data))
    for alias, key in (("category", "categories"), ("tag", "tags")):  # Hexo accepts both
        if meta.get(alias) is not None and meta.get(key) is None:
            meta[key] = meta[alias]
    tz = site_timezone(site, tz)
    warnings: list[str] = []
    slug, info = site.slug(rel_path) if site is not None else ("", {})  # (a slug only makes a site's page address)
    when = _date(meta, rel_path, tz, site, info, file_time, warnings)
    reason, recheck_at = published(meta, when, site, now or datetime.now(timezone.utc))
    if reason is not None:
        raise Unpublished(reason, recheck_at)
    raw_title = _scalar(meta, "title")
    if raw_title is None:
        raw_title = Path(rel_path).stem
        warnings.append("no title; using the file name")
    text, code = split_code(content)
    url, page_url = _links(meta, content, warnings)
    hierarchies = category_hierarchies(meta.get("categories"))
    if site is not None and when is not None and page_url is None:
        page_url = site.page_url(meta, slug, _scalar(meta, "title") or "", when, hierarchies)
    description = _scalar(meta, "description") or _scalar(meta, "excerpt")
    post = Post(
        id=_scalar(meta, "urlname") or path_id(rel_path),
        title=display_title(raw_title),
        raw_title=raw_title,
        date=when,
        url=url,
        body=plain_text(text),
        path=rel_path,
        tags=_labels(meta, "tags", warnings),
        categories=_labels({"categories": [name for h in hierarchies for name in h]}, "categories", warnings),
        page_url=page_url,
        code=code,
        description=plain_text(description) if description else None,
        updated=coerce_front_matter_date(meta.get("updated"), tz),
    )
    return ParsedPost(post, warnings)
