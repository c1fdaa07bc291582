"""Logging set-up: one format, the bot token never written, noisy HTTP request logs quiet."""

from __future__ import annotations

import logging
import re

_TOKEN_IN_TEXT = re.compile(r"\b\d{5,}:[A-Za-z0-9_-]{20,}\b")


class RedactToken(logging.Filter):
    """Replaces bot tokens (the configured one, and anything shaped like one) in log records."""

    def __init__(self, token: str | None = None) -> None:
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = _TOKEN_IN_TEXT.sub("[REDACTED]", message)
        if self.token:
            cleaned = cleaned.replace(self.token, "[REDACTED]")
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def setup_logging(level: str = "INFO", token: str | None = None) -> None:
    """Log to stderr at ``level``, with tokens redacted on every handler."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactToken(token))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    # httpx logs every request URL, and Bot API URLs contain the token.
    for name in ("httpx", "httpcore", "apscheduler"):
        logging.getLogger(name).setLevel(logging.WARNING)
