"""Button actions as Telegram callback data: at most 64 bytes, checked when they come back.

An action is written inline (``g|search|2|主题教育``) when it fits; otherwise it is kept (as
JSON) in the store's payload table and the button carries ``k|<key>``. Whatever comes back is parsed
defensively: anything unknown, malformed or forgotten decodes to None.
"""

from __future__ import annotations

import json

from .render import Action
from .service import user_number
from .store import SubscriberStore

MAX_BYTES = 64
SEP = "|"
STORED = "k"
CODES = {"page": "g", "post": "d", "unsub": "u", "noop": "n"}
KINDS = {code: kind for kind, code in CODES.items()}
ARITY = {"page": 3, "post": 1, "unsub": 1, "noop": 0}


class CallbackCodec:
    """Encodes :class:`Action` values into callback data and back."""

    def __init__(self, store: SubscriberStore) -> None:
        self.store = store

    def encode(self, action: Action) -> str:
        """Callback data for ``action``, never over 64 bytes."""
        parts = [CODES[action.kind], *action.args]
        text = SEP.join(parts)
        if all(SEP not in a for a in action.args) and len(text.encode("utf-8")) <= MAX_BYTES:
            return text
        return f"{STORED}{SEP}{self.store.put_payload(json.dumps(parts, ensure_ascii=False))}"

    def decode(self, data: str | None) -> Action | None:
        """The action behind callback data, or None when it is not one of ours (or expired)."""
        if not data or len(data.encode("utf-8")) > MAX_BYTES:
            return None
        code, _, rest = data.partition(SEP)
        if code != STORED:
            return self._parse(data.split(SEP))
        stored = self.store.get_payload(rest) if rest.isascii() and rest else None
        try:
            parts = json.loads(stored) if stored else None
        except ValueError:
            return None
        if not isinstance(parts, list) or not parts or not all(isinstance(p, str) for p in parts):
            return None
        return self._parse(parts)

    @staticmethod
    def _parse(parts: list[str]) -> Action | None:
        code, *args = parts
        kind = KINDS.get(code)
        if kind is None or len(args) != ARITY[kind]:
            return None
        if kind == "page" and not (args[0] in ("search", "range", "latest") and user_number(args[2]) and args[1]):
            return None
        if kind == "unsub" and user_number(args[0]) is None:
            return None
        if kind == "post" and not args[0]:
            return None
        return Action(kind, tuple(args))
