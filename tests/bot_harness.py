"""Running the real Application against the fake Bot API server, and talking to it."""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator

from bot.app import TelegramBot, build_application
from bot.ratelimit import ChatRateLimiter
from bot.service import ArchiveService
from bot.settings import Settings
from bot.store import SubscriberStore
from retrieval import Archive
from telegram import Update
from telegram.ext import Application, ContextTypes, TypeHandler

from fake_bot_api import FakeBotAPI, Sent

#: No pacing in tests (one test checks the pacing itself).
UNLIMITED = dict(chat_max_rate=0, overall_max_rate=0, group_max_rate=0)
#: A handler group after the bot's own: PTB runs an update's groups one after the other (the
#: error handler included), so reaching it means the bot has done all it will for the update.
HANDLED_GROUP = 1000


@dataclass
class Harness:
    api: FakeBotAPI
    app: Application
    service: ArchiveService
    store: SubscriberStore
    handled: set[int]

    @property
    def bot(self) -> TelegramBot:
        return self.app.bot_data["telegram_bot"]

    async def settled(self, update: dict) -> None:
        """Wait until the bot has finished with ``update`` (as returned by the fake API)."""
        await self.api.wait_for(lambda: update["update_id"] in self.handled)

    async def ask(self, text: str, chat_id: int = 111, **kw) -> Sent:
        """Send ``text`` as a user and wait for the bot's next message to that chat."""
        before = len(self.api.sent_to(chat_id))
        self.api.message(chat_id, text, **kw)
        return await self.api.wait_for(lambda: len(self.api.sent_to(chat_id)) > before and self.api.sent_to(chat_id)[before])

    async def press(self, sent: Sent, data: str, **kw) -> dict:
        """Press a button and wait until the bot has done all the press causes (the answer,
        and any edit or message); returns the parameters of its callback answer."""
        update = self.api.press(sent, data, **kw)
        await self.settled(update)
        query_id = update["callback_query"]["id"]
        answers = [c.params for c in self.api.of("answerCallbackQuery") if c.params.get("callback_query_id") == query_id]
        assert len(answers) == 1, answers
        return answers[0]

    def current(self, sent: Sent) -> Sent:
        """The message as it is now (after edits)."""
        return self.api.messages[(sent.chat_id, sent.message_id)]

    async def baseline(self) -> None:
        """Wait for the push job's first run (which records the existing archive)."""
        await self.api.wait_for(self.store.has_baseline)


def settings_for(api: FakeBotAPI, content: Path, data: Path, **kw) -> Settings:
    return Settings(token=api.token, api_base_url=api.base_url, content_dir=content, data_dir=data, **kw)


@asynccontextmanager
async def running_bot(api: FakeBotAPI, content: Path, data: Path, limits: dict | None = None, **kw) -> AsyncIterator[Harness]:
    """The bot, polling the fake server, until the block ends."""
    settings = settings_for(api, content, data, **kw)
    archive = Archive.open(content, settings.index_dir, settle_seconds=0, site_url=settings.site_url,
                           permalink=settings.permalink)
    store = SubscriberStore(settings.db_path)
    service = ArchiveService(archive, store)
    app = build_application(settings, service, rate_limiter=ChatRateLimiter(**(limits or UNLIMITED)))
    handled: set[int] = set()

    async def mark(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        handled.add(update.update_id)

    app.add_handler(TypeHandler(Update, mark), group=HANDLED_GROUP)
    try:
        async with app:
            await app.post_init(app)  # type: ignore[misc]  # what run_polling does first
            await app.start()
            await app.updater.start_polling(poll_interval=0, timeout=1)  # type: ignore[union-attr]
            try:
                yield Harness(api, app, service, store, handled)
            finally:
                await app.updater.stop()  # type: ignore[union-attr]
                await app.stop()
    finally:
        store.close()
        archive.close()
