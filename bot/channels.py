"""Channels: who may point the bot's pushes at a channel, checked with the Bot API each time.

A channel never sends commands, so one of its administrators subscribes it from a private
chat (``/subscribe @xx_news 主题教育``). The bot asks Telegram, at that moment and again at
removal, whether that person administers the channel and whether the bot itself may post
there, and says exactly what is missing when not. Operators can also list channels in
``ARCHIVE_CHANNELS``; those subscriptions are made to match the setting at every start.
"""

from __future__ import annotations

import logging

from telegram import Bot, ChatMemberAdministrator
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import BadRequest, Forbidden, TelegramError

from .service import ArchiveService, Problem
from .settings import CHANNEL_REF
from .store import Channel

log = logging.getLogger(__name__)


def split_channel(text: str) -> tuple[str | None, str]:
    """``@xx_news 主题教育`` → ('@xx_news', '主题教育'); (None, text) when it names no channel."""
    first, _, rest = text.strip().partition(" ")
    return (first, rest.strip()) if CHANNEL_REF.fullmatch(first) else (None, text)


async def _channel(bot: Bot, ref: str) -> Channel | Problem:
    try:
        chat = await bot.get_chat(ref)
    except (BadRequest, Forbidden):
        return Problem("channel_unknown", {"channel": ref})
    if chat.type != ChatType.CHANNEL:
        return Problem("not_a_channel", {"channel": ref})
    return Channel(chat.id, chat.username)


async def bot_can_post(bot: Bot, channel: Channel) -> bool:
    """Whether the bot is the channel's creator, or an administrator allowed to post."""
    try:
        me = await bot.get_chat_member(channel.chat_id, bot.id)
    except TelegramError:
        return False
    if me.status == ChatMemberStatus.OWNER:
        return True
    return isinstance(me, ChatMemberAdministrator) and bool(me.can_post_messages)


async def is_admin(bot: Bot, channel: Channel, user_id: int) -> bool:
    try:
        member = await bot.get_chat_member(channel.chat_id, user_id)
    except TelegramError:
        return False
    return member.status in (ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER)


async def managed_channel(bot: Bot, ref: str, user_id: int, *, to_post: bool) -> Channel | Problem:
    """The channel ``ref`` when ``user_id`` administers it (and, with ``to_post``, the bot may
    post there); otherwise what is missing, as a :class:`Problem` naming the channel."""
    channel = await _channel(bot, ref)
    if isinstance(channel, Problem):
        return channel
    if not await is_admin(bot, channel, user_id):
        return Problem("channel_admins_only", {"channel": channel.label})
    if to_post and not await bot_can_post(bot, channel):
        return Problem("channel_bot_cannot_post", {"channel": channel.label})
    return channel


async def keep_configured(bot: Bot, service: ArchiveService, configured: tuple[tuple[str, str], ...], lang: str = "zh") -> None:
    """Make the ARCHIVE_CHANNELS subscriptions match the setting. A channel that cannot be
    resolved leaves the earlier ones as they were (it may be a passing network error)."""
    store = service.store
    assert store is not None
    wanted: list[tuple[int, str]] = []
    for ref, query in configured:
        channel = await _channel(bot, ref)
        if isinstance(channel, Problem):
            log.error("ARCHIVE_CHANNELS: cannot find %s (%s); its subscriptions are left as they were", ref, channel.code)
            return
        problem = service.check_subscription(query)
        if problem is not None:
            log.error("ARCHIVE_CHANNELS: the query %r for %s cannot be used (%s); skipped", query, ref, problem.code)
            continue
        if not await bot_can_post(bot, channel):
            log.warning("ARCHIVE_CHANNELS: I may not post to %s: make me an administrator with the right to post",
                        channel.label)
        store.upsert_channel(channel.chat_id, channel.username, lang)
        wanted.append((channel.chat_id, query))
    store.replace_settings_subscriptions(wanted)
    log.info("ARCHIVE_CHANNELS: %d subscriptions kept for %d channels", len(wanted), len({c for c, _ in wanted}))
