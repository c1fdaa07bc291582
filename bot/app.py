"""The Telegram layer: python-telegram-bot handlers that route updates to the :class:`Dialog`,
send what it renders, and run the push job on the JobQueue."""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Awaitable, Callable

from telegram import (
    Bot,
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQueryResultArticle,
    InlineQueryResultsButton,
    InputTextMessageContent,
    LinkPreviewOptions,
    Update,
)
from telegram.constants import ChatMemberStatus, ChatType, ParseMode
from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, TelegramError, TimedOut
from telegram.ext import (
    Application,
    ApplicationBuilder,
    BaseRateLimiter,
    CallbackContext,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    InlineQueryHandler,
    MessageHandler,
    filters,
)

from .callbacks import CallbackCodec
from .channels import keep_configured, managed_channel, split_channel
from .dialog import Dialog, Who
from .push import Pusher
from .ratelimit import ChatRateLimiter
from .render import HTML, Message, PlainFormat, render_articles, render_problem
from .service import ArchiveService, Problem, user_number
from .settings import Settings
from .texts import language, t

log = logging.getLogger(__name__)

#: Commands shown in Telegram's menu (the admins' /reload and /stats are not advertised).
MENU = ("search", "range", "latest", "post", "subscribe", "subscriptions", "unsubscribe", "help")
#: Commands that change a chat's subscriptions: group admins only, in groups.
MANAGING = ("subscribe", "unsubscribe")
INLINE_CACHE_SECONDS = 30
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
PUSH_JOB = "push"
#: The longest wait between two attempts to reach the Bot API at start-up (seconds).
MAX_CONNECT_DELAY = 60.0

Handler = Callable[[Update, ContextTypes.DEFAULT_TYPE], Awaitable[None]]


def who(update: Update) -> Who:
    """The chat and reply language of an update."""
    chat, user = update.effective_chat, update.effective_user
    lang = language(user.language_code if user else None)
    return Who(chat.id if chat else 0, chat.type if chat else ChatType.PRIVATE, lang)


def command_text(update: Update) -> str:
    """What follows the command (``/search@bot 主题 教育`` → ``主题 教育``), line breaks kept."""
    message = update.effective_message
    text = (message.text or "") if message else ""
    entity = next((e for e in (message.entities if message else ()) if e.type == "bot_command" and e.offset == 0), None)
    return text[entity.length:].strip() if entity else text.partition(" ")[2].strip()


class TelegramBot:
    """Handlers for one Application; everything they answer comes from the Dialog."""

    def __init__(self, settings: Settings, service: ArchiveService) -> None:
        if service.store is None:
            raise ValueError("the bot needs a subscriber store")
        self.settings, self.service = settings, service
        self.dialog = Dialog(service, HTML)
        self.codec = CallbackCodec(service.store)
        self.pusher = Pusher(service)

    # ---- sending ----------------------------------------------------------------------------
    def markup(self, message: Message) -> InlineKeyboardMarkup | None:
        if not message.buttons:
            return None
        rows = [[InlineKeyboardButton(b.label, callback_data=self.codec.encode(b.action)) for b in row] for row in message.buttons]
        return InlineKeyboardMarkup(rows)

    async def reply(self, update: Update, message: Message) -> None:
        markup = await asyncio.to_thread(self.markup, message)
        await update.effective_chat.send_message(  # type: ignore[union-attr]
            message.text, parse_mode=ParseMode.HTML, reply_markup=markup, link_preview_options=NO_PREVIEW
        )

    # ---- commands ---------------------------------------------------------------------------
    def command(self, name: str) -> Handler:
        """The handler of ``/name``."""

        async def handle(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            asker, text = who(update), command_text(update)
            if name in MANAGING and split_channel(text)[0] is not None:
                await self.channel_command(update, context, name, text)
                return
            if name in MANAGING and not await self.may_manage(update, context):
                await self.reply(update, self.dialog.refused(asker, "admins_only"))
                return
            await self.reply(update, await asyncio.to_thread(self.dialog.command, asker, name, text))

        return handle

    async def channel_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE, name: str, text: str) -> None:
        """``/subscribe @channel [QUERY]`` and ``/unsubscribe @channel [N]``, from a private chat:
        the sender must administer the channel (checked now), and to subscribe the bot must be
        allowed to post there."""
        asker, user = who(update), update.effective_user
        if asker.chat_type != ChatType.PRIVATE or user is None:
            await self.reply(update, self.dialog.refused(asker, "channel_private_only"))
            return
        ref, rest = split_channel(text)
        assert ref is not None
        channel = await managed_channel(context.bot, ref, user.id, to_post=name == "subscribe")
        if isinstance(channel, Problem):
            await self.reply(update, render_problem(HTML, channel, asker.lang))
            return
        act = self.dialog.subscribe_channel if name == "subscribe" else self.dialog.unsubscribe_channel
        await self.reply(update, await asyncio.to_thread(act, asker, channel, rest))

    async def on_migrate(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A group became a supergroup: its subscriptions follow it (the service message comes
        to the old group with ``migrate_to_chat_id``, to the new one with ``migrate_from_chat_id``)."""
        message = update.effective_message
        if message is None:
            return
        if message.migrate_to_chat_id:
            old, new = message.chat.id, message.migrate_to_chat_id
        elif message.migrate_from_chat_id:
            old, new = message.migrate_from_chat_id, message.chat.id
        else:
            return
        if await asyncio.to_thread(self.service.store.migrate_chat, old, new):  # type: ignore[union-attr]
            log.info("group %d became the supergroup %d: its subscriptions moved", old, new)

    async def on_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A plain message in a private chat is a search."""
        text = update.effective_message.text or ""  # type: ignore[union-attr]
        await self.reply(update, await asyncio.to_thread(self.dialog.search, who(update), text))

    async def on_unknown(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self.reply(update, await asyncio.to_thread(self.dialog.start, who(update)))

    async def on_reload(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        asker = who(update)
        if not await self.admin_only(update):
            return
        report = await self.pusher.run(context.bot, full=True)
        await self.reply(update, self.dialog.reloaded(
            asker, added=report.added, changed=report.changed, removed=report.removed, sent=report.sent))

    async def on_stats(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if await self.admin_only(update):
            await self.reply(update, await asyncio.to_thread(self.dialog.stats, who(update)))

    async def admin_only(self, update: Update) -> bool:
        """True for the bot's admins; anyone else is told no."""
        user = update.effective_user
        if user is not None and user.id in self.settings.admin_ids:
            return True
        await self.reply(update, self.dialog.refused(who(update), "bot_admins_only"))
        return False

    async def may_manage(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
        """Private chats manage themselves; in groups only administrators may."""
        chat, user, message = update.effective_chat, update.effective_user, update.effective_message
        if chat is None or chat.type == ChatType.PRIVATE:
            return True
        if message is not None and message.sender_chat is not None and message.sender_chat.id == chat.id:
            return True  # an anonymous group admin
        if user is None:
            return False
        try:
            member = await context.bot.get_chat_member(chat.id, user.id)
        except TelegramError as exc:
            log.warning("cannot check the admins of chat %d: %s", chat.id, exc)
            return False
        return member.status in (ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER)

    # ---- buttons ----------------------------------------------------------------------------
    async def on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        asker = who(update)
        action = await asyncio.to_thread(self.codec.decode, query.data)
        if action is None or (query.message is None and action.kind != "noop"):
            await query.answer(t(asker.lang, "expired"))
            return
        if action.kind == "noop":
            await query.answer()
            return
        if action.kind == "unsub" and not await self.may_manage(update, context):
            await query.answer(t(asker.lang, "admins_only"), show_alert=True)
            return
        message = await asyncio.to_thread(self.dialog.action, asker, action)
        await query.answer()
        if message is None:
            return
        if action.kind == "post":
            await self.reply(update, message)
            return
        try:
            await query.edit_message_text(
                message.text, parse_mode=ParseMode.HTML, reply_markup=await asyncio.to_thread(self.markup, message),
                link_preview_options=NO_PREVIEW,
            )
        except BadRequest as exc:
            if "not modified" not in str(exc).lower():
                raise

    # ---- inline mode ------------------------------------------------------------------------
    async def on_inline(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        inline = update.inline_query
        assert inline is not None
        lang = language(inline.from_user.language_code)
        offset = user_number(inline.offset) or 0
        result = await asyncio.to_thread(self.service.inline, inline.query, offset)
        if isinstance(result, Problem):
            hint = render_problem(PlainFormat(), result, lang, inline.query).text
            await inline.answer([], cache_time=INLINE_CACHE_SECONDS, button=InlineQueryResultsButton(
                text=hint[:64], start_parameter="help"))
            return
        articles = [
            InlineQueryResultArticle(
                id=a.id, title=a.title, description=a.description, url=a.url,
                input_message_content=InputTextMessageContent(a.message.text, parse_mode=ParseMode.HTML),
            )
            for a in render_articles(HTML, result, lang)
        ]
        page = result.page
        next_offset = str(page.offset + len(page.hits)) if page.has_next and result.kind == "search" else ""
        await inline.answer(articles, cache_time=INLINE_CACHE_SECONDS, next_offset=next_offset)

    # ---- push and errors --------------------------------------------------------------------
    async def push_job(self, context: CallbackContext) -> None:
        """The JobQueue's repeating scan-and-push."""
        await self.pusher.run(context.bot)

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Log the failure with its traceback; tell the user briefly; keep running."""
        error = context.error
        if isinstance(error, Forbidden):
            log.info("cannot answer: %s", error)
            return
        log.error("error while handling %s", type(update).__name__, exc_info=error)
        if not isinstance(update, Update):
            return
        lang = who(update).lang
        try:
            if update.callback_query is not None:
                await update.callback_query.answer(t(lang, "error"))
            elif update.effective_chat is not None and update.effective_message is not None:
                await update.effective_chat.send_message(t(lang, "error"))
        except TelegramError as exc:
            log.warning("could not apologise: %s", exc)

    # ---- wiring -----------------------------------------------------------------------------
    def register(self, app: Application) -> None:
        for name in ("start", *MENU):
            app.add_handler(CommandHandler(name, self.command(name)))
        app.add_handler(MessageHandler(filters.StatusUpdate.MIGRATE, self.on_migrate))
        app.add_handler(CommandHandler("reload", self.on_reload))
        app.add_handler(CommandHandler("stats", self.on_stats))
        private = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE
        app.add_handler(MessageHandler(private & filters.TEXT & ~filters.COMMAND, self.on_text))
        app.add_handler(MessageHandler(private & filters.COMMAND, self.on_unknown))
        app.add_handler(CallbackQueryHandler(self.on_button))
        app.add_handler(InlineQueryHandler(self.on_inline))
        app.add_error_handler(self.on_error)

    async def post_init(self, app: Application) -> None:
        """At start-up: the command menu in Chinese and English, and the push job."""
        for code in (None, "zh", "en"):
            lang = "en" if code == "en" else "zh"
            commands = [BotCommand(name, t(lang, f"cmd_{name}")) for name in MENU]
            await app.bot.set_my_commands(commands, language_code=code)
        if self.settings.channels:
            await keep_configured(app.bot, self.service, self.settings.channels)
        if app.job_queue is None:
            raise RuntimeError("python-telegram-bot was installed without its job-queue extra")
        app.job_queue.run_repeating(
            self.push_job, interval=self.settings.scan_interval, first=1.0, name=PUSH_JOB,
            job_kwargs={"max_instances": 1, "coalesce": True, "misfire_grace_time": None},
        )


def build_application(settings: Settings, service: ArchiveService, rate_limiter: BaseRateLimiter | None = None) -> Application:
    """The Application: handlers, rate limiter, Bot API address from the settings."""
    if not settings.token:
        raise ValueError("no bot token")
    bot = TelegramBot(settings, service)
    builder = (
        ApplicationBuilder()
        .token(settings.token)
        .rate_limiter(rate_limiter or ChatRateLimiter(max_retries=3))
        .concurrent_updates(64)
        .post_init(bot.post_init)
    )
    if settings.api_base_url:
        base = settings.api_base_url.rstrip("/")
        builder = builder.base_url(base)
        if base.endswith("/bot"):
            builder = builder.base_file_url(base[: -len("bot")] + "file/bot")
    app = builder.build()
    app.bot_data["telegram_bot"] = bot
    bot.register(app)
    return app


async def reach_api(settings: Settings, first_delay: float = 1.0, max_delay: float = MAX_CONNECT_DELAY) -> None:
    """Wait until the Bot API answers ``getMe``, retrying with exponential backoff and one log
    line per failure; an invalid token ends the wait with :class:`InvalidToken`."""
    where = settings.api_base_url or "https://api.telegram.org"
    delay = first_delay
    while True:
        try:
            base = (settings.api_base_url or "https://api.telegram.org/bot").rstrip("/")
            async with Bot(settings.token or "", base_url=base) as bot:
                me = bot.bot
            log.info("connected to the Bot API as @%s", me.username)
            return
        except InvalidToken:
            raise
        except (NetworkError, TimedOut) as exc:
            log.warning("cannot reach the Telegram Bot API at %s (%s); retrying in %.0f s", where, exc, delay)
        await asyncio.sleep(delay)
        delay = min(max_delay, delay * 2)


def run_bot(settings: Settings, service: ArchiveService, webhook_url: str | None = None,
            listen: str = "0.0.0.0", port: int = 8443) -> None:
    """Run until interrupted: long polling, or a webhook when ``webhook_url`` is given.
    Waits (retrying) until the Bot API can be reached first."""
    asyncio.run(reach_api(settings))
    app = build_application(settings, service)
    if webhook_url:
        log.info("starting with a webhook at %s (listening on %s:%d)", webhook_url, listen, port)
        app.run_webhook(
            listen=listen, port=port, url_path="telegram", webhook_url=webhook_url.rstrip("/") + "/telegram",
            secret_token=secrets.token_urlsafe(32), allowed_updates=Update.ALL_TYPES,
        )
    else:
        log.info("starting with long polling")
        app.run_polling(allowed_updates=Update.ALL_TYPES)
