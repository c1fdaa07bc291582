"""The new-post push: scan the archive, queue what each subscription matches, deliver it.

A run has two halves. :meth:`Pusher.scan` (in a worker thread) refreshes the archive, finds the
posts not seen before, matches them against every active subscription and writes, in one
transaction, "seen" for the posts and a pending delivery per (chat, post). :meth:`Pusher.deliver`
sends what is pending, marking each delivery sent as soon as Telegram accepted its message.
A crash at any point therefore leaves each pair either sent and marked, or pending and sent
on the next run. (The one window left is between Telegram's acknowledgement and the local
commit that follows it: the Bot API offers no idempotency key to close it.)
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from telegram import Bot, LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.error import BadRequest, ChatMigrated, Forbidden, TelegramError

from retrieval import Post, Query, QueryError

from .render import HTML, Format, Message, render_digest, render_push
from .service import ArchiveService
from .store import Delivery, Subscription
from .texts import t

log = logging.getLogger(__name__)

#: From this many new posts for one chat, they go out as a digest.
DIGEST_FROM = 4
#: Chats served at the same time (the rate limiter paces the actual requests).
CONCURRENT_CHATS = 32
#: Bad Request descriptions that mean the chat is gone for good (or, for a channel, that the
#: bot may no longer post there). A group that became a supergroup is not gone: it moved.
GONE = ("chat not found", "user is deactivated", "peer_id_invalid", "bot was kicked", "need administrator rights",
        "not enough rights", "chat_write_forbidden")


@dataclass(frozen=True, slots=True)
class Target:
    """Where a delivery goes: the chat, its language, whether it is a channel, and whether it
    is the new home of a group that moved during this run."""

    chat_id: int
    lang: str
    channel: bool = False
    moved: bool = False


@dataclass(slots=True)
class PushReport:
    """What one run did."""

    added: int = 0
    changed: int = 0
    removed: int = 0
    baseline: bool = False
    queued: int = 0
    sent: int = 0
    messages: int = 0
    failed: int = 0
    deactivated: int = 0
    migrated: int = 0


def match_subscriptions(subscriptions: list[Subscription], posts: list[Post], service: ArchiveService) -> list[Delivery]:
    """One delivery per (chat, post) that at least one of the chat's subscriptions matches."""
    queries: dict[str, Query | None] = {}
    for sub in subscriptions:
        if sub.query not in queries:
            try:
                queries[sub.query] = service.archive.parse(sub.query)
            except QueryError as exc:
                log.warning("subscription %d has an unusable query (%s); skipped", sub.id, exc.code)
                queries[sub.query] = None
    deliveries = []
    for post in posts:
        matcher = service.archive.matcher(post)
        verdict = {text: q is not None and matcher.matches(q) for text, q in queries.items()}
        by_chat: dict[int, list[str]] = {}
        for sub in subscriptions:
            if verdict[sub.query]:
                by_chat.setdefault(sub.chat_id, []).append(sub.query)
        deliveries += [Delivery(chat, post.id, tuple(found)) for chat, found in by_chat.items()]
    return deliveries


class Pusher:
    """Runs the push; one run at a time."""

    def __init__(self, service: ArchiveService, fmt: Format = HTML, concurrency: int = CONCURRENT_CHATS) -> None:
        if service.store is None:
            raise ValueError("the push needs a subscriber store")
        self.service, self.store, self.fmt = service, service.store, fmt
        self.concurrency = concurrency
        self._running = asyncio.Lock()
        #: Whether every post in the archive is recorded as seen (or queued): then a run need
        #: only look at what its own refresh added, not at every id (a million, in a big one).
        self._caught_up = False

    def scan(self, report: PushReport, full: bool = False) -> None:
        """Refresh the archive (a quick scan unless ``full``) and queue deliveries for posts
        not seen before (blocking). The first run of a process compares every post with the
        store (a crash may have left posts indexed but not recorded); later ones, only the
        posts their refresh added or changed, unless a run failed since."""
        caught_up, self._caught_up = self._caught_up, False  # until this run has recorded everything
        refreshed = self.service.refresh(full)
        report.added, report.changed, report.removed = len(refreshed.added), len(refreshed.changed), len(refreshed.removed)
        if caught_up:
            ids = [*refreshed.added, *refreshed.changed]
        else:
            with self.service.lock:
                ids = self.service.archive.post_ids()
        self._record(ids, report)
        self._caught_up = True

    def _record(self, ids: list[str], report: PushReport) -> None:
        """Record ``ids`` as seen, queueing deliveries for those not seen before."""
        if not self.store.has_baseline():
            self.store.record_new_posts(ids, [], baseline=True)
            report.baseline = True
            log.info("push baseline: %d existing posts will not be pushed", len(ids))
            return
        new_ids = self.store.unseen(ids)
        if not new_ids:
            return
        with self.service.lock:
            posts = [p for p in map(self.service.archive.get, new_ids) if p is not None]
        deliveries = match_subscriptions(self.store.active_subscriptions(), posts, self.service)
        self.store.record_new_posts(new_ids, deliveries)
        report.queued = len(deliveries)
        log.info("%d new posts, %d deliveries queued", len(new_ids), len(deliveries))

    async def run(self, bot: Bot, full: bool = False) -> PushReport:
        """Scan, then deliver everything pending (including what an earlier run left)."""
        report = PushReport()
        async with self._running:
            await asyncio.to_thread(self.scan, report, full)
            await self.deliver(bot, report)
        return report

    async def deliver(self, bot: Bot, report: PushReport) -> None:
        """Send every pending delivery, chats concurrently (paced by the bot's rate limiter)."""
        pending, languages, kinds = await asyncio.to_thread(
            lambda: (self.store.pending(), self.store.chat_languages(), self.store.chat_kinds()))
        gate = asyncio.Semaphore(self.concurrency)

        async def one(chat_id: int, items: list[Delivery]) -> None:
            async with gate:
                target = Target(chat_id, languages.get(chat_id, "zh"), kinds.get(chat_id) == "channel")
                await self._deliver_chat(bot, target, items, report)

        await asyncio.gather(*(one(chat_id, items) for chat_id, items in pending.items()))
        if report.sent or report.failed:
            log.info("push: %d posts in %d messages, %d failures, %d chats deactivated",
                     report.sent, report.messages, report.failed, report.deactivated)

    def _messages(self, target: Target, items: list[Delivery]) -> list[tuple[Message, list[str], str | None]]:
        """The messages for ``items``, each with its posts' ids and the link to preview (None:
        no preview; a digest has many links)."""
        with self.service.lock:
            found = [(self.service.archive.get(d.post_id), d) for d in items]
        gone = [d.post_id for post, d in found if post is None]
        if gone:  # removed from the archive before it could be pushed
            self.store.mark_dropped(target.chat_id, gone)
        posts = [(post, d.queries) for post, d in found if post is not None]
        if len(posts) >= DIGEST_FROM:
            return [(message, ids, None) for message, ids in render_digest(self.fmt, posts, target.lang, target.channel)]
        return [(render_push(self.fmt, post, queries, target.lang, target.channel), [post.id], post.link or "")
                for post, queries in posts]

    async def _deliver_chat(self, bot: Bot, target: Target, items: list[Delivery], report: PushReport) -> None:
        chat_id = target.chat_id
        messages = await asyncio.to_thread(self._messages, target, items)
        for message, post_ids, preview in messages:
            options = LinkPreviewOptions(is_disabled=True) if preview is None else LinkPreviewOptions(url=preview or None)
            try:
                await bot.send_message(chat_id, message.text, parse_mode=ParseMode.HTML, link_preview_options=options)
            except ChatMigrated as exc:  # the group became a supergroup: follow it, once
                if target.moved:
                    log.error("chat %d moved again, to %d, within one run; next run", chat_id, exc.new_chat_id)
                    report.failed += 1
                    return
                await self._moved(bot, target, exc.new_chat_id, report)
                return
            except Forbidden as exc:
                await self._gone(bot, target, str(exc), report)
                return
            except BadRequest as exc:
                if any(g in str(exc).lower() for g in GONE):
                    await self._gone(bot, target, str(exc), report)
                    return
                log.error("push to chat %d rejected (%s); dropping posts %s", chat_id, exc, post_ids)
                await asyncio.to_thread(self.store.mark_dropped, chat_id, post_ids)
                await asyncio.to_thread(self.store.bump, "failed")
                report.failed += 1
                continue
            except TelegramError as exc:  # network trouble, RetryAfter beyond the retries: next run
                log.warning("push to chat %d failed (%s); will retry next run", chat_id, exc)
                await asyncio.to_thread(self.store.bump, "failed")
                report.failed += 1
                return
            await asyncio.to_thread(self.store.mark_sent, chat_id, post_ids)
            log.debug("pushed %s to chat %d", ", ".join(post_ids), chat_id)
            report.sent += len(post_ids)
            report.messages += 1

    async def _moved(self, bot: Bot, target: Target, new_id: int, report: PushReport) -> None:
        """Move the chat's subscriptions and deliveries to its new id and deliver there."""
        log.info("chat %d became the supergroup %d: its subscriptions move there", target.chat_id, new_id)
        await asyncio.to_thread(self.store.migrate_chat, target.chat_id, new_id)
        report.migrated += 1
        items = (await asyncio.to_thread(self.store.pending)).get(new_id, [])
        await self._deliver_chat(bot, Target(new_id, target.lang, target.channel, moved=True), items, report)

    async def _gone(self, bot: Bot, target: Target, reason: str, report: PushReport) -> None:
        log.info("chat %d blocked the bot or is gone (%s): deactivated", target.chat_id, reason)
        first_time = await asyncio.to_thread(self.store.deactivate_chat, target.chat_id, reason)
        report.deactivated += 1
        if target.channel and first_time:
            await self._tell_channel_admins(bot, target, reason)

    async def _tell_channel_admins(self, bot: Bot, target: Target, reason: str) -> None:
        """The bot lost the right to post to a channel: tell the admins who set it up, once."""
        channel = next((c for c in await asyncio.to_thread(self.store.channels) if c.chat_id == target.chat_id), None)
        label = channel.label if channel else str(target.chat_id)
        languages = await asyncio.to_thread(self.store.chat_languages)
        for admin in await asyncio.to_thread(self.store.channel_admin_chats, target.chat_id):
            text = t(languages.get(admin, target.lang), "channel_lost_rights", channel=label, reason=reason[:200])
            try:
                await bot.send_message(admin, self.fmt.text(text), parse_mode=ParseMode.HTML)
            except TelegramError as exc:
                log.warning("could not tell chat %d that %s is lost: %s", admin, label, exc)
