"""Commands and button actions to messages: the conversation, shared by Telegram and the terminal."""

from __future__ import annotations

from dataclasses import dataclass

from retrieval import ArchiveStats

from .render import Action, Format, Message, render_listing, render_post, render_problem, render_subscriptions
from .store import Channel
from .service import MAX_LATEST, PER_PAGE, ArchiveService, Listing, Problem, user_number
from .texts import t

EXAMPLES = ("/search 主题教育", "/range 2019-11-01 2019-11-30", "/latest")


@dataclass(frozen=True, slots=True)
class Who:
    """Who is asking: the chat, its kind ('private', 'group'…), and the reply language."""

    chat_id: int
    chat_type: str = "private"
    lang: str = "zh"


class Dialog:
    """Answers commands and button actions with rendered messages."""

    def __init__(self, service: ArchiveService, fmt: Format) -> None:
        self.service, self.fmt = service, fmt

    def _listing(self, result: Listing | Problem, who: Who, query: str = "") -> Message:
        if isinstance(result, Problem):
            return render_problem(self.fmt, result, who.lang, query)
        return render_listing(self.fmt, result, who.lang)

    @staticmethod
    def _span(stats: ArchiveStats, lang: str) -> str:
        if stats.first_date and stats.last_date:
            return t(lang, "span", first=f"{stats.first_date:%Y-%m-%d}", last=f"{stats.last_date:%Y-%m-%d}")
        return t(lang, "span_empty")

    def start(self, who: Who) -> Message:
        with self.service.lock:
            stats = self.service.archive.stats()
        text = t(who.lang, "start", posts=stats.posts, span=self._span(stats, who.lang), examples="\n".join(EXAMPLES))
        return Message(self.fmt.text(text))

    def stats(self, who: Who) -> Message:
        """The admins' /stats."""
        o = self.service.overview()
        last = f"{o.last_scan:%Y-%m-%d %H:%M:%S}" if o.last_scan else t(who.lang, "never")
        text = t(who.lang, "stats", posts=o.archive.posts, span=self._span(o.archive, who.lang),
                 skipped=len(o.archive.skipped), last_scan=last, scan_seconds=o.scan_seconds,
                 configured="；".join(o.configured) or "-", **o.store)
        return Message(self.fmt.text(text))

    def reloaded(self, who: Who, *, added: int, changed: int, removed: int, sent: int) -> Message:
        """The admins' /reload answer."""
        return Message(self.fmt.text(t(who.lang, "reloaded", added=added, changed=changed, removed=removed, sent=sent)))

    def refused(self, who: Who, key: str) -> Message:
        """A polite no (``admins_only``, ``bot_admins_only``)."""
        return Message(self.fmt.text(t(who.lang, key)))

    def search(self, who: Who, text: str) -> Message:
        return self._listing(self.service.search(text), who, text)

    def range(self, who: Who, text: str) -> Message:
        return self._listing(self.service.range(text), who, text)

    def latest(self, who: Who, text: str) -> Message:
        count = user_number(text) if text.strip() else PER_PAGE
        if count is None:
            return render_problem(self.fmt, Problem("latest_usage", {"max": MAX_LATEST}), who.lang)
        return self._listing(self.service.latest(count), who)

    def post(self, who: Who, text: str) -> Message:
        if not text.strip():
            return render_problem(self.fmt, Problem("post_usage"), who.lang)
        result = self.service.post(text.split()[0])
        if isinstance(result, Problem):
            return render_problem(self.fmt, result, who.lang)
        return render_post(self.fmt, result, who.lang)

    def subscribe(self, who: Who, text: str) -> Message:
        result = self.service.subscribe(who.chat_id, who.chat_type, who.lang, text)
        if isinstance(result, Problem):
            return render_problem(self.fmt, result, who.lang, text)
        query = result.subscription.query
        if not result.created:
            key = "already_subscribed"
        else:
            key = "subscribed" if query else "subscribed_all"
        return Message(self.fmt.text(t(who.lang, key, query=query or t(who.lang, "sub_all_label"))))

    def subscriptions(self, who: Who) -> Message:
        managed = self.service.managed(who.chat_id) if who.chat_type == "private" else []
        return render_subscriptions(self.fmt, self.service.subscriptions(who.chat_id), who.lang, managed)

    def subscribe_channel(self, who: Who, channel: Channel, text: str) -> Message:
        """``/subscribe @channel [QUERY]`` once the channel has been checked."""
        result = self.service.subscribe_channel(channel, who.chat_id, who.lang, text)
        if isinstance(result, Problem):
            return render_problem(self.fmt, result, who.lang, text)
        query = result.subscription.query
        key = "channel_already" if not result.created else "channel_subscribed" if query else "channel_subscribed_all"
        return Message(self.fmt.text(t(who.lang, key, channel=channel.label, query=query or t(who.lang, "sub_all_label"))))

    def unsubscribe_channel(self, who: Who, channel: Channel, text: str) -> Message:
        """``/unsubscribe @channel [N]`` once the sender is known to administer it."""
        number = user_number(text) if text.strip() else None
        if text.strip() and number is None:
            return render_problem(self.fmt, Problem("channel_unsub_usage", {"channel": channel.label}), who.lang)
        result = self.service.unsubscribe(channel.chat_id, number)
        if isinstance(result, Problem):
            return render_problem(self.fmt, Problem("channel_unsub_usage", {"channel": channel.label}), who.lang)
        return Message(self.fmt.text(t(who.lang, "channel_unsubscribed", channel=channel.label, n=result)))

    def unsubscribe(self, who: Who, text: str) -> Message:
        number = user_number(text) if text.strip() else None
        if text.strip() and number is None:
            return render_problem(self.fmt, Problem("unsub_usage"), who.lang)
        result = self.service.unsubscribe(who.chat_id, number)
        if isinstance(result, Problem):
            return render_problem(self.fmt, result, who.lang)
        return Message(self.fmt.text(t(who.lang, "unsubscribed", n=result)))

    def action(self, who: Who, action: Action) -> Message | None:
        """Carry out a button's action; None for buttons that do nothing."""
        number = user_number(action.args[-1]) if action.args else None
        if action.kind == "page" and len(action.args) == 3 and number is not None:
            kind, request, _ = action.args
            return self._listing(self.service.listing(kind, request, number), who, request)
        if action.kind == "post" and action.args:
            return self.post(who, action.args[0])
        if action.kind == "unsub" and number is not None:
            self.service.unsubscribe_id(who.chat_id, number)
            return self.subscriptions(who)
        if action.kind == "noop":
            return None
        return Message(self.fmt.text(t(who.lang, "expired")))

    COMMANDS = ("search", "range", "latest", "post", "subscribe", "unsubscribe")

    def command(self, who: Who, name: str, text: str) -> Message:
        """Any command by name (``start``/``help``/``subscriptions`` take no text)."""
        if name in ("start", "help"):
            return self.start(who)
        if name == "subscriptions":
            return self.subscriptions(who)
        if name in self.COMMANDS:
            return getattr(self, name)(who, text)
        return self.start(who)
