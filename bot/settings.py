"""Settings from the environment and ``.env``; invalid values stop start-up naming the setting."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values

DEFAULT_SCAN_INTERVAL = 300.0
#: A channel as users and settings name it: ``@username`` or its numeric id ``-100…``.
CHANNEL_REF = re.compile(r"@[A-Za-z][A-Za-z0-9_]{3,31}|-100[0-9]{5,16}")


class SettingsError(ValueError):
    """A setting with an invalid value; the message names it."""


@dataclass(frozen=True)
class Settings:
    """Everything configurable. ``token`` is never shown by ``repr``."""

    token: str | None = field(default=None, repr=False)
    api_base_url: str | None = None
    content_dir: Path = Path("content")
    data_dir: Path = Path("data")
    admin_ids: frozenset[int] = frozenset()
    scan_interval: float = DEFAULT_SCAN_INTERVAL
    timezone: str = "Asia/Shanghai"
    user_dict: Path | None = None
    site_url: str | None = None
    permalink: str | None = None
    #: (channel, query) pairs from ARCHIVE_CHANNELS, kept as subscriptions on start.
    channels: tuple[tuple[str, str], ...] = ()

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "archive-bot.sqlite3"


def _admin_ids(raw: str) -> frozenset[int]:
    ids = set()
    for part in raw.replace(";", ",").split(","):
        if part.strip():
            try:
                ids.add(int(part.strip()))
            except ValueError:
                raise SettingsError(f"ARCHIVE_ADMIN_IDS: {part.strip()!r} is not a numeric Telegram user id") from None
    return frozenset(ids)


def _interval(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"ARCHIVE_SCAN_INTERVAL: {raw!r} is not a number of seconds") from None
    if not 5 <= value <= 86400:
        raise SettingsError("ARCHIVE_SCAN_INTERVAL: must be between 5 and 86400 seconds")
    return value


def _channels(raw: str) -> tuple[tuple[str, str], ...]:
    """``@xx_news:主题教育,@yy:`` → (('@xx_news', '主题教育'), ('@yy', '')): channel, then an
    optional query after the first colon; entries separated by commas."""
    pairs = []
    for entry in filter(str.strip, raw.split(",")):
        ref, _, query = entry.strip().partition(":")
        if not CHANNEL_REF.fullmatch(ref.strip()):
            raise SettingsError(f"ARCHIVE_CHANNELS: {ref.strip()!r} is not a channel (@username or -100…)")
        pairs.append((ref.strip(), " ".join(query.split())))
    return tuple(dict.fromkeys(pairs))


def load_settings(environ: Mapping[str, str] | None = None, dotenv: Path | None = Path(".env")) -> Settings:
    """Read settings: the process environment wins over ``.env``."""
    values: dict[str, str] = {}
    if dotenv is not None and dotenv.is_file():
        values.update({k: v for k, v in dotenv_values(dotenv).items() if v is not None})
    values.update(os.environ if environ is None else environ)
    get = lambda name: (values.get(name) or "").strip()  # noqa: E731

    token = get("TELEGRAM_BOT_TOKEN") or None
    if token is not None and (":" not in token or any(c.isspace() for c in token)):
        raise SettingsError("TELEGRAM_BOT_TOKEN: does not look like a bot token (expected 123456:ABC…)")
    base_url = get("TELEGRAM_API_BASE_URL") or None
    if base_url is not None and not base_url.startswith(("http://", "https://")):
        raise SettingsError("TELEGRAM_API_BASE_URL: must start with http:// or https://")
    tz = get("ARCHIVE_TIMEZONE") or "Asia/Shanghai"
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"ARCHIVE_TIMEZONE: unknown time zone {tz!r}") from None
    user_dict = get("ARCHIVE_USER_DICT")
    if user_dict and not Path(user_dict).is_file():
        raise SettingsError(f"ARCHIVE_USER_DICT: {user_dict} is not a file")
    site_url = get("ARCHIVE_SITE_URL") or None
    if site_url is not None and not site_url.startswith(("http://", "https://")):
        raise SettingsError("ARCHIVE_SITE_URL: must start with http:// or https:// (the site's address, as Hexo's url)")
    return Settings(
        token=token,
        api_base_url=base_url,
        content_dir=Path(get("ARCHIVE_CONTENT_DIR") or "content"),
        data_dir=Path(get("ARCHIVE_DATA_DIR") or "data"),
        admin_ids=_admin_ids(get("ARCHIVE_ADMIN_IDS")),
        scan_interval=_interval(get("ARCHIVE_SCAN_INTERVAL") or str(DEFAULT_SCAN_INTERVAL)),
        timezone=tz,
        user_dict=Path(user_dict) if user_dict else None,
        site_url=site_url,
        permalink=get("ARCHIVE_PERMALINK") or None,
        channels=_channels(get("ARCHIVE_CHANNELS")),
    )
