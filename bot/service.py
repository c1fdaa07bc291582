"""The one service layer: search, range, latest, post, subscriptions. Plain results, no Telegram."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from datetime import datetime

from retrieval import MAX_QUERY_CHARS, Archive, ArchiveStats, Post, QueryError, RefreshResult, SearchPage, range_query

from .store import Channel, Subscription, SubscriberStore

PER_PAGE = 5
MAX_LATEST = 20
MAX_SUBSCRIPTIONS = 20
INLINE_PAGE = 50


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a request got no results: ``code`` names a sentence in :mod:`bot.texts`."""

    code: str
    fields: dict = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Listing:
    """A page of posts. ``kind`` ('search', 'range', 'latest') and ``request`` (what the user
    typed after the command) are enough to fetch any other page of it."""

    kind: str
    request: str
    page: SearchPage


@dataclass(frozen=True, slots=True)
class SubscribeResult:
    subscription: Subscription
    created: bool


@dataclass(frozen=True, slots=True)
class Overview:
    """For admins: the archive's numbers, the store's counters, the last scan."""

    archive: ArchiveStats
    store: dict[str, int]
    last_scan: datetime | None
    scan_seconds: float
    configured: list[str] = field(default_factory=list)


_NUMBER = re.compile(r"[0-9]{1,9}")


def user_number(text: str) -> int | None:
    """A count or position a user typed (or a button carries): ASCII digits only, so ``²``
    or ``٣`` (which ``str.isdigit`` accepts and ``int`` may not) is no number; None if not one."""
    text = text.strip()
    return int(text) if _NUMBER.fullmatch(text) else None


def _clip_text(text: str, n: int = 40) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _problem(exc: QueryError) -> Problem:
    return Problem(exc.code, {"value": exc.value, "max": MAX_QUERY_CHARS})


class ArchiveService:
    """Answers what users ask. Thread-safe: the archive is used under one lock, so a scan in a
    worker thread and searches never see each other half-done."""

    def __init__(self, archive: Archive, store: SubscriberStore | None = None) -> None:
        self.archive = archive
        self.store = store
        self.lock = threading.RLock()

    # ---- reading ----------------------------------------------------------------------------
    def _run(self, kind: str, request: str, query_text: str, page: int, per_page: int) -> Listing | Problem:
        try:
            with self.lock:
                query = self.archive.parse(query_text)
                if query.is_empty and kind == "search":
                    return Problem("empty_query")
                result = self.archive.search(query, limit=per_page, offset=(max(1, page) - 1) * per_page)
        except QueryError as exc:
            return _problem(exc)
        if query.has_terms and not result.tokens and not query.has_filters:
            return Problem("no_terms")
        return Listing(kind, request, result)

    def search(self, text: str, page: int = 1, per_page: int = PER_PAGE) -> Listing | Problem:
        """Ranked search with the full query language."""
        if not text.strip():
            return Problem("empty_query")
        if len(text) > MAX_QUERY_CHARS:
            return Problem("too_long", {"max": MAX_QUERY_CHARS})
        return self._run("search", text.strip(), text, page, per_page)

    def range(self, text: str, page: int = 1, per_page: int = PER_PAGE) -> Listing | Problem:
        """Posts in a date range, newest first, or ranked when a query follows the dates."""
        if len(text) > MAX_QUERY_CHARS:
            return Problem("too_long", {"max": MAX_QUERY_CHARS})
        try:
            request = range_query(text)
        except QueryError as exc:
            return _problem(exc)
        return self._run("range", text.strip(), request, page, per_page)

    def latest(self, count: int = PER_PAGE, page: int = 1) -> Listing | Problem:
        """The newest posts, ``count`` a page."""
        if not 1 <= count <= MAX_LATEST:
            return Problem("latest_usage", {"max": MAX_LATEST})
        with self.lock:
            result = self.archive.latest(limit=count, offset=(max(1, page) - 1) * count)
        return Listing("latest", str(count), result)

    def listing(self, kind: str, request: str, page: int) -> Listing | Problem:
        """Another page of an earlier listing."""
        if kind == "search":
            return self.search(request, page)
        if kind == "range":
            return self.range(request, page)
        count = user_number(request)
        if kind == "latest" and count is not None:
            return self.latest(count, page)
        return Problem("expired")

    def inline(self, text: str, offset: int) -> Listing | Problem:
        """Results for inline mode: up to 50 from ``offset``."""
        if not text.strip():
            return self.latest(MAX_LATEST)
        page = offset // INLINE_PAGE + 1
        return self.search(text, page=page, per_page=INLINE_PAGE)

    def post(self, post_id: str) -> Post | Problem:
        with self.lock:
            post = self.archive.get(post_id.strip())
        return post if post is not None else Problem("not_found")

    def refresh(self, full: bool = True) -> RefreshResult:
        """Sync the archive with its files; ``full=False``: a quick scan. The directory walk
        and the comparison with the file table run outside the lock (searches go on meanwhile),
        the indexing under it."""
        scanned = self.archive.scan(full)
        with self.lock:
            return self.archive.refresh(full=full, scanned=scanned)

    def overview(self) -> Overview:
        with self.lock:
            stats = self.archive.stats()
            last, seconds = self.archive.last_refresh, self.archive.last_refresh_seconds
        store = self._store()
        configured = [f"{channel.label} {sub.query or '*'}" + ("" if channel.active else " (!)")
                      for sub, channel in store.settings_subscriptions()]
        return Overview(stats, store.overview(), last, seconds, configured)

    # ---- subscriptions ----------------------------------------------------------------------
    def _store(self) -> SubscriberStore:
        if self.store is None:
            raise RuntimeError("this service has no subscriber store")
        return self.store

    def check_subscription(self, text: str) -> Problem | None:
        """Why ``text`` cannot be a standing query (None when it can; empty: every new post)."""
        if not text:
            return None
        try:
            query = self.archive.parse(text)
        except QueryError as exc:
            return _problem(exc)
        if query.relative:
            return Problem("relative_date", {"value": _clip_text(text)})
        if query.has_terms and not self.archive.query_tokens(query) and not query.has_filters:
            return Problem("no_terms")
        return None

    def subscribe(self, chat_id: int, chat_type: str, lang: str, text: str) -> SubscribeResult | Problem:
        """Subscribe a chat to all new posts (empty ``text``) or to those matching ``text``."""
        text = " ".join(text.split())
        problem = self.check_subscription(text)
        if problem is not None:
            return problem
        self._store().upsert_chat(chat_id, chat_type, lang)  # also re-activates a chat that had blocked the bot
        return self._add(chat_id, text)

    def subscribe_channel(self, channel: Channel, admin_chat_id: int, lang: str, text: str) -> SubscribeResult | Problem:
        """Subscribe a channel (already checked: see :mod:`bot.channels`) for one of its admins."""
        text = " ".join(text.split())
        problem = self.check_subscription(text)
        if problem is not None:
            return problem
        self._store().upsert_channel(channel.chat_id, channel.username, lang, admin_chat_id)
        return self._add(channel.chat_id, text)

    def managed(self, admin_chat_id: int) -> list[tuple[Channel, list[Subscription]]]:
        """The channels this private chat manages, with their subscriptions."""
        store = self._store()
        return [(c, store.subscriptions(c.chat_id)) for c in store.managed_channels(admin_chat_id)]

    def _add(self, chat_id: int, text: str) -> SubscribeResult | Problem:
        store = self._store()
        existing = store.find_subscription(chat_id, text)
        if existing is not None:
            return SubscribeResult(existing, False)
        if store.count_subscriptions(chat_id) >= MAX_SUBSCRIPTIONS:
            return Problem("too_many_subs", {"max": MAX_SUBSCRIPTIONS})
        return SubscribeResult(store.add_subscription(chat_id, text), True)

    def subscriptions(self, chat_id: int) -> list[Subscription]:
        return self._store().subscriptions(chat_id)

    def unsubscribe(self, chat_id: int, number: int | None = None) -> int | Problem:
        """Remove all of a chat's subscriptions, or its ``number``-th (1-based, as listed)."""
        store = self._store()
        if number is None:
            return store.remove_subscriptions(chat_id)
        subs = store.subscriptions(chat_id)
        if not 1 <= number <= len(subs):
            return Problem("unsub_usage")
        return store.remove_subscription(chat_id, subs[number - 1].id)

    def unsubscribe_id(self, chat_id: int, subscription_id: int) -> int:
        """Remove one subscription by its id (from a button); 0 when it was already gone."""
        return self._store().remove_subscription(chat_id, subscription_id)
