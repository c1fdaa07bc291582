"""A fake Telegram Bot API server on 127.0.0.1 for end-to-end tests.

It serves ``getMe`` and ``getUpdates`` (feeding scripted updates), records every call, and
rejects what the real server rejects: message text over 4096 characters after entity
parsing, HTML it cannot parse, callback data over 64 bytes, more than 50 inline results.
Chats can be made to answer 403 (blocked the bot), 400 "chat not found", or 502.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from aiohttp import web

ALLOWED_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre",
                "span", "tg-spoiler", "tg-emoji", "blockquote"}
_TAG = re.compile(r'<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[a-zA-Z-]+(?:\s*=\s*"[^"<>]*")?)*)\s*>')
_ATTR = re.compile(r'([a-zA-Z-]+)(?:\s*=\s*"([^"]*)")?')
_ENTITY = re.compile(r"&(lt|gt|amp|quot|#[0-9]{1,7}|#x[0-9a-fA-F]{1,6});")
_ENTITY_TEXT = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
JSON_FIELDS = {"chat_id", "user_id", "message_id", "offset", "timeout", "limit", "reply_markup", "results",
               "commands", "link_preview_options", "show_alert", "cache_time", "is_personal", "button",
               "scope", "allowed_updates", "drop_pending_updates", "disable_web_page_preview"}


class BadRequest(Exception):
    """Answered as HTTP 400 with this description."""


class Migrated(Exception):
    """Answered as Telegram answers a send to a group that became a supergroup."""

    def __init__(self, new_id: int) -> None:
        super().__init__(new_id)
        self.new_id = new_id


@dataclass
class FakeChannel:
    """A channel: who administers it, and what the bot may do there."""

    chat_id: int
    username: str
    admins: set[int] = field(default_factory=set)
    owner: int | None = None
    bot_member: bool = True
    bot_can_post: bool = True


def parse_html(text: str) -> str:
    """The visible text of a Telegram-HTML message; raises BadRequest like the real server."""
    out: list[str] = []
    stack: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "<":
            m = _TAG.match(text, i)
            if m is None:
                raise BadRequest(f"Bad Request: can't parse entities: unexpected \"<\" at byte offset {i}")
            closing, name, attrs = m.group(1), m.group(2).lower(), m.group(3)
            if name not in ALLOWED_TAGS:
                raise BadRequest(f'Bad Request: can\'t parse entities: unsupported start tag "{name}" at byte offset {i}')
            if closing:
                if not stack or stack[-1] != name:
                    raise BadRequest(f'Bad Request: can\'t parse entities: can\'t find start tag for end tag "{name}"')
                stack.pop()
            else:
                found = dict(_ATTR.findall(attrs))
                if name == "a" and not found.get("href"):
                    raise BadRequest("Bad Request: can't parse entities: a tag without href")
                stack.append(name)
            i = m.end()
        elif ch == "&":
            m = _ENTITY.match(text, i)
            if m is None:
                raise BadRequest(f"Bad Request: can't parse entities: unsupported entity at byte offset {i}")
            name = m.group(1)
            out.append(_ENTITY_TEXT.get(name) or chr(int(name[2:], 16) if name[1] == "x" else int(name[1:])))
            i = m.end()
        elif ch == ">":
            raise BadRequest(f"Bad Request: can't parse entities: unexpected \">\" at byte offset {i}")
        else:
            out.append(ch)
            i += 1
    if stack:
        raise BadRequest(f'Bad Request: can\'t parse entities: can\'t find end tag corresponding to start tag "{stack[-1]}"')
    return "".join(out)


def utf16_len(s: str) -> int:
    return len(s.encode("utf-16-le")) // 2


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    at: float = field(default_factory=time.monotonic)


@dataclass
class Sent:
    """A message the bot sent (and its latest edit)."""

    chat_id: int
    message_id: int
    text: str
    params: dict[str, Any]
    visible: str

    @property
    def buttons(self) -> list[dict]:
        markup = self.params.get("reply_markup") or {}
        return [b for row in markup.get("inline_keyboard", []) for b in row]


class FakeBotAPI:
    """The server, its scripted updates and its records."""

    def __init__(self, token: str = "123456:TEST-token-abcdefghijklmnopqrstuvwxyz", username: str = "archive_test_bot") -> None:
        self.token, self.username = token, username
        self.bot_id = int(token.split(":")[0])
        self.calls: list[Call] = []
        self.messages: dict[tuple[int, int], Sent] = {}
        self.blocked: set[int] = set()
        self.missing: set[int] = set()
        self.unreachable: set[int] = set()
        self.admins: dict[int, set[int]] = {}
        self.channels: dict[int, FakeChannel] = {}
        self.migrated: dict[int, int] = {}
        self.before_send: Callable[[dict], Any] | None = None  # may raise, may be async
        self._updates: list[dict] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1000)
        self._query_ids = itertools.count(1)
        self._arrived = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # ---- lifecycle --------------------------------------------------------------------------
    async def start(self, port: int = 0) -> str:
        """Serve on 127.0.0.1:``port`` (a free one by default)."""
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self._handle)
        app.router.add_get("/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self.base_url

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # ---- scripting users --------------------------------------------------------------------
    def _user(self, user_id: int, lang: str) -> dict:
        return {"id": user_id, "is_bot": False, "first_name": f"user{user_id}", "language_code": lang}

    @staticmethod
    def _chat(chat_id: int, chat_type: str) -> dict:
        chat = {"id": chat_id, "type": chat_type}
        if chat_type == "private":
            chat["first_name"] = f"user{chat_id}"
        else:
            chat["title"] = f"group {chat_id}"
        return chat

    def _push(self, update: dict) -> dict:
        update["update_id"] = next(self._update_ids)
        self._updates.append(update)
        self._arrived.set()
        return update

    def message(self, chat_id: int, text: str, *, user_id: int | None = None, chat_type: str = "private",
                lang: str = "zh-hans") -> dict:
        """A user sends ``text`` (a leading ``/command`` gets its bot_command entity)."""
        message: dict[str, Any] = {
            "message_id": next(self._message_ids), "date": int(time.time()),
            "chat": self._chat(chat_id, chat_type), "from": self._user(user_id or abs(chat_id), lang), "text": text,
        }
        if text.startswith("/"):
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": utf16_len(text.split()[0])}]
        return self._push({"message": message})

    def press(self, sent: Sent, data: str, *, user_id: int | None = None, lang: str = "zh-hans",
              chat_type: str = "private") -> dict:
        """A user presses a button (any callback data) under a message the bot sent."""
        message = {"message_id": sent.message_id, "date": int(time.time()), "chat": self._chat(sent.chat_id, chat_type),
                   "from": {"id": self.bot_id, "is_bot": True, "first_name": "bot", "username": self.username},
                   "text": sent.visible}
        query = {"id": str(next(self._query_ids)), "from": self._user(user_id or abs(sent.chat_id), lang),
                 "chat_instance": str(sent.chat_id), "data": data, "message": message}
        return self._push({"callback_query": query})

    def add_channel(self, chat_id: int, username: str, admins: set[int], **kw: Any) -> FakeChannel:
        channel = self.channels[chat_id] = FakeChannel(chat_id, username, set(admins), **kw)
        return channel

    def migrate(self, old_id: int, new_id: int) -> dict:
        """The group ``old_id`` becomes the supergroup ``new_id``: sends to it fail from now on,
        and the service message arrives in the old group."""
        self.migrated[old_id] = new_id
        message = {"message_id": next(self._message_ids), "date": int(time.time()), "chat": self._chat(old_id, "group"),
                   "from": self._user(7, "zh"), "migrate_to_chat_id": new_id}
        return self._push({"message": message})

    def inline(self, query: str, *, offset: str = "", user_id: int = 500, lang: str = "zh-hans") -> dict:
        """A user types ``@bot query``."""
        inline = {"id": str(next(self._query_ids)), "from": self._user(user_id, lang), "query": query, "offset": offset}
        return self._push({"inline_query": inline})

    # ---- reading the records ----------------------------------------------------------------
    def of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def sent_to(self, chat_id: int) -> list[Sent]:
        return [m for m in self.messages.values() if m.chat_id == chat_id]

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 15.0) -> Any:
        """Poll until ``predicate()`` is truthy; return its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; calls so far: {[c.method for c in self.calls][-20:]}")
            await asyncio.sleep(0.02)

    async def answer(self, method: str, count_before: int, timeout: float = 15.0) -> Call:
        """The first ``method`` call after the first ``count_before`` of them."""
        return await self.wait_for(lambda: len(self.of(method)) > count_before and self.of(method)[count_before], timeout)

    # ---- the API ----------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        params = await self._params(request)
        method = request.match_info["method"]
        if method != "getUpdates":
            self.calls.append(Call(method, params))
        handler = getattr(self, f"_api_{method}", None)
        if handler is None:
            return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)
        try:
            result = handler(params)
            if asyncio.iscoroutine(result):
                result = await result
        except BadRequest as exc:
            return web.json_response({"ok": False, "error_code": 400, "description": str(exc)}, status=400)
        except Migrated as exc:
            return web.json_response({"ok": False, "error_code": 400,
                                      "description": "Bad Request: group chat was upgraded to a supergroup chat",
                                      "parameters": {"migrate_to_chat_id": exc.new_id}}, status=400)
        except PermissionError as exc:
            return web.json_response({"ok": False, "error_code": 403, "description": str(exc)}, status=403)
        except ConnectionError:
            return web.Response(status=502, text="Bad Gateway")
        return web.json_response({"ok": True, "result": result})

    @staticmethod
    async def _params(request: web.Request) -> dict[str, Any]:
        if request.content_type == "application/json":
            return await request.json()
        form = await request.post()
        params: dict[str, Any] = {}
        for key, value in form.items():
            value = str(value)
            if key in JSON_FIELDS:
                try:
                    params[key] = json.loads(value)
                except ValueError:  # "@channel" as chat_id
                    params[key] = value
            else:
                params[key] = value
        return params

    def _api_getMe(self, params: dict) -> dict:
        return {"id": self.bot_id, "is_bot": True, "first_name": "Archive", "username": self.username,
                "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": True}

    def _api_deleteWebhook(self, params: dict) -> bool:
        return True

    def _api_setMyCommands(self, params: dict) -> bool:
        commands = params.get("commands") or []
        if not 0 < len(commands) <= 100:
            raise BadRequest("Bad Request: commands must be a non-empty list")
        for c in commands:
            if not re.fullmatch(r"[a-z0-9_]{1,32}", c["command"]) or not 1 <= len(c["description"]) <= 256:
                raise BadRequest("Bad Request: BOT_COMMAND_INVALID")
        return True

    async def _api_getUpdates(self, params: dict) -> list[dict]:
        offset = int(params.get("offset") or 0)
        self._updates = [u for u in self._updates if u["update_id"] >= offset]
        if not self._updates:
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), timeout=min(float(params.get("timeout") or 0), 1.0))
            except asyncio.TimeoutError:
                pass
        return list(self._updates)

    def _channel(self, ref: Any) -> FakeChannel:
        text = str(ref)
        for channel in self.channels.values():
            if text in (str(channel.chat_id), "@" + channel.username):
                return channel
        raise BadRequest("Bad Request: chat not found")

    def _check_chat(self, chat_id: int) -> None:
        if chat_id in self.migrated:
            raise Migrated(self.migrated[chat_id])
        if chat_id in self.channels:
            channel = self.channels[chat_id]
            if not channel.bot_member:
                raise PermissionError("Forbidden: bot is not a member of the channel chat")
            if not channel.bot_can_post:
                raise BadRequest("Bad Request: need administrator rights in the channel chat")
        if chat_id in self.blocked:
            raise PermissionError("Forbidden: bot was blocked by the user")
        if chat_id in self.missing:
            raise BadRequest("Bad Request: chat not found")
        if chat_id in self.unreachable:
            raise ConnectionError

    @staticmethod
    def _check_markup(params: dict) -> None:
        for row in (params.get("reply_markup") or {}).get("inline_keyboard", []):
            for button in row:
                data = button.get("callback_data")
                if data is not None and not 1 <= len(data.encode("utf-8")) <= 64:
                    raise BadRequest("Bad Request: BUTTON_DATA_INVALID")
                if not button.get("text"):
                    raise BadRequest("Bad Request: button text is empty")

    @staticmethod
    def _visible(params: dict) -> str:
        text = params.get("text") or params.get("message_text") or ""
        visible = parse_html(text) if (params.get("parse_mode") or "").upper() == "HTML" else text
        if not visible.strip():
            raise BadRequest("Bad Request: message text is empty")
        if utf16_len(visible) > 4096:
            raise BadRequest("Bad Request: message is too long")
        return visible

    def _message_json(self, sent: Sent) -> dict:
        if sent.chat_id in self.channels:
            channel = self.channels[sent.chat_id]
            chat = {"id": channel.chat_id, "type": "channel", "title": channel.username, "username": channel.username}
            return {"message_id": sent.message_id, "date": int(time.time()), "text": sent.visible, "chat": chat,
                    "sender_chat": chat}
        return {"message_id": sent.message_id, "date": int(time.time()), "text": sent.visible,
                "chat": self._chat(sent.chat_id, "private" if sent.chat_id > 0 else "supergroup"),
                "from": {"id": self.bot_id, "is_bot": True, "first_name": "Archive", "username": self.username}}

    async def _api_sendMessage(self, params: dict) -> dict:
        chat_id = int(params["chat_id"])
        self._check_chat(chat_id)
        visible = self._visible(params)
        self._check_markup(params)
        if self.before_send is not None:
            result = self.before_send(params)
            if asyncio.iscoroutine(result):
                await result
        sent = Sent(chat_id, next(self._message_ids), params["text"], params, visible)
        self.messages[(chat_id, sent.message_id)] = sent
        return self._message_json(sent)

    def _api_editMessageText(self, params: dict) -> dict:
        key = (int(params["chat_id"]), int(params["message_id"]))
        if key not in self.messages:
            raise BadRequest("Bad Request: message to edit not found")
        visible = self._visible(params)
        self._check_markup(params)
        old = self.messages[key]
        if old.text == params["text"] and old.params.get("reply_markup") == params.get("reply_markup"):
            raise BadRequest("Bad Request: message is not modified")
        self.messages[key] = Sent(key[0], key[1], params["text"], params, visible)
        return self._message_json(self.messages[key])

    def _api_answerCallbackQuery(self, params: dict) -> bool:
        if len(params.get("text") or "") > 200:
            raise BadRequest("Bad Request: MESSAGE_TOO_LONG")
        return True

    def _api_answerInlineQuery(self, params: dict) -> bool:
        results = params.get("results") or []
        if len(results) > 50:
            raise BadRequest("Bad Request: RESULTS_TOO_MUCH")
        if len((params.get("next_offset") or "").encode()) > 64:
            raise BadRequest("Bad Request: NEXT_OFFSET_INVALID")
        ids = [r["id"] for r in results]
        if len(set(ids)) != len(ids) or any(not 1 <= len(i.encode()) <= 64 for i in ids):
            raise BadRequest("Bad Request: RESULT_ID_INVALID")
        for r in results:
            content = r["input_message_content"]
            self._visible(content | {"text": content["message_text"]})
        return True

    def _api_getChat(self, params: dict) -> dict:
        channel = self._channel(params["chat_id"])
        if not channel.bot_member:
            raise BadRequest("Bad Request: chat not found")
        return {"id": channel.chat_id, "type": "channel", "title": f"频道 {channel.username}",
                "username": channel.username, "accent_color_id": 0, "max_reaction_count": 11,
                "accepted_gift_types": {"unlimited_gifts": False, "limited_gifts": False, "unique_gifts": False,
                                        "premium_subscription": False, "gifts_from_channels": False}}

    def _channel_member(self, channel: FakeChannel, user_id: int) -> dict:
        user = self._user(user_id, "zh") if user_id != self.bot_id else {
            "id": self.bot_id, "is_bot": True, "first_name": "Archive", "username": self.username}
        if user_id == channel.owner:
            return {"status": "creator", "user": user, "is_anonymous": False}
        is_admin = user_id in channel.admins or (user_id == self.bot_id and channel.bot_member)
        if not is_admin:
            return {"status": "left" if user_id == self.bot_id else "member", "user": user}
        can_post = channel.bot_can_post if user_id == self.bot_id else True
        return {"status": "administrator", "user": user, "can_be_edited": False, "is_anonymous": False,
                "can_manage_chat": True, "can_delete_messages": True, "can_manage_video_chats": True,
                "can_restrict_members": True, "can_promote_members": False, "can_change_info": True,
                "can_invite_users": True, "can_post_stories": False, "can_edit_stories": False,
                "can_delete_stories": False, "can_post_messages": can_post, "can_edit_messages": can_post}

    def _api_getChatAdministrators(self, params: dict) -> list[dict]:
        channel = self._channel(params["chat_id"])
        ids = [*([channel.owner] if channel.owner else []), *sorted(channel.admins), self.bot_id]
        return [self._channel_member(channel, i) for i in ids if self._channel_member(channel, i)["status"] != "left"]

    def _api_getChatMember(self, params: dict) -> dict:
        chat_id, user_id = params["chat_id"], int(params["user_id"])
        if str(chat_id).startswith("@") or int(chat_id) in self.channels:
            return self._channel_member(self._channel(chat_id), user_id)
        chat_id = int(chat_id)
        status = "administrator" if user_id in self.admins.get(chat_id, set()) else "member"
        user = self._user(user_id, "zh")
        if status == "administrator":
            return {"status": status, "user": user, "can_be_edited": False, "is_anonymous": False,
                    "can_manage_chat": True, "can_delete_messages": True, "can_manage_video_chats": True,
                    "can_restrict_members": True, "can_promote_members": False, "can_change_info": True,
                    "can_invite_users": True, "can_post_stories": False, "can_edit_stories": False,
                    "can_delete_stories": False}
        return {"status": status, "user": user}
