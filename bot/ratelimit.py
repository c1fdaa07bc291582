"""Telegram's flood limits: PTB's AIORateLimiter, plus its missing one-message-a-second per chat."""

from __future__ import annotations

import contextlib
from typing import Any

from aiolimiter import AsyncLimiter
from telegram.ext import AIORateLimiter

MAX_CHAT_LIMITERS = 1024


class ChatRateLimiter(AIORateLimiter):
    """:class:`~telegram.ext.AIORateLimiter` (30 messages/s overall, 20/min per group, retries
    after RetryAfter) that also keeps each private chat to ``chat_max_rate`` messages per
    ``chat_time_period`` seconds (Telegram: about 1/s). ``chat_max_rate=0`` disables that."""

    def __init__(self, *, chat_max_rate: float = 1, chat_time_period: float = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._chat_rate = (chat_max_rate, chat_time_period)
        self._chat_limiters: dict[int, AsyncLimiter] = {}

    def _chat_limiter(self, chat_id: object) -> AsyncLimiter | None:
        with contextlib.suppress(TypeError, ValueError):
            chat_id = int(chat_id)  # type: ignore[call-overload]
        if not isinstance(chat_id, int) or chat_id <= 0 or not self._chat_rate[0]:
            return None  # groups and channels have AIORateLimiter's group limit
        if len(self._chat_limiters) > MAX_CHAT_LIMITERS:
            idle = [k for k, lim in self._chat_limiters.items() if lim.has_capacity(lim.max_rate)]
            for key in idle:
                del self._chat_limiters[key]
        limiter = self._chat_limiters.get(chat_id)
        if limiter is None:
            limiter = self._chat_limiters[chat_id] = AsyncLimiter(*self._chat_rate)
        return limiter

    async def process_request(self, callback, args, kwargs, endpoint, data, rate_limit_args):  # type: ignore[no-untyped-def]
        """Wait for the chat's own limit, then for AIORateLimiter's."""
        limiter = self._chat_limiter(data.get("chat_id"))
        if limiter is None:
            return await super().process_request(callback, args, kwargs, endpoint, data, rate_limit_args)
        async with limiter:
            return await super().process_request(callback, args, kwargs, endpoint, data, rate_limit_args)
