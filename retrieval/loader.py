"""Reading post files: parsing with python-frontmatter, and reasons for skipping."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path

import frontmatter
import yaml

from .dates import coerce_front_matter_date, date_from_filename
from .markup import display_title, plain_text, source_url
from .post import Post

log = logging.getLogger(__name__)

MAX_POST_BYTES = 5 * 1024 * 1024
_URL_KEYS = ("url", "link", "source", "permalink")
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


def parse_post(data: bytes, rel_path: str, tz: tzinfo) -> ParsedPost:
    """Parse one file's bytes into a post; raises :class:`MalformedPost` with the reason."""
    if len(data) > MAX_POST_BYTES:
        raise MalformedPost(too_large())
    meta, content = _front_matter(_decode(data))
    warnings: list[str] = []
    raw_title = _scalar(meta, "title")
    body = plain_text(content)
    if raw_title is None:
        raw_title = Path(rel_path).stem
        warnings.append("no title; using the file name")
    when = coerce_front_matter_date(meta.get("date"), tz)
    if when is None:
        if meta.get("date") not in (None, ""):
            warnings.append(f"unreadable date {meta.get('date')!r}")
        when = date_from_filename(Path(rel_path).name, tz)
    if when is None:
        warnings.append("undated: excluded from date filters")
    url = source_url(content)
    for key in _URL_KEYS:
        if url is None:
            url = _scalar(meta, key)
    if url is not None and not url.lower().startswith(("http://", "https://")):
        warnings.append(f"ignored a link that is not http(s): {url[:80]!r}")
        url = None
    post = Post(
        id=_scalar(meta, "urlname") or path_id(rel_path),
        title=display_title(raw_title),
        raw_title=raw_title,
        date=when,
        url=url,
        body=body,
        path=rel_path,
        tags=_labels(meta, "tags", warnings),
        categories=_labels(meta, "categories", warnings),
    )
    return ParsedPost(post, warnings)
