"""The subscriber store: chats, subscriptions, the delivery log, and button payloads, in SQLite.

One file in the data directory, WAL mode, schema versioned in ``schema_version`` and
migrated forward by :data:`MIGRATIONS`. Every statement is parameterized. Methods are
synchronous and short; async code calls them through ``asyncio.to_thread``.

The delivery log is the outbox of the push: a (chat, post) row is written ``pending``
in the same transaction that marks the post as seen, and becomes ``sent`` right after
Telegram accepts the message, so a crash anywhere leaves every pair either sent once
or still pending.
"""

from __future__ import annotations

import base64
import hashlib
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

MIGRATIONS: list[str] = [
    """
    CREATE TABLE chats (
        chat_id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        language TEXT NOT NULL DEFAULT 'zh',
        active INTEGER NOT NULL DEFAULT 1,
        deactivated_reason TEXT,
        created_at REAL NOT NULL
    );
    CREATE TABLE subscriptions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        chat_id INTEGER NOT NULL REFERENCES chats(chat_id) ON DELETE CASCADE,
        query TEXT NOT NULL,
        created_at REAL NOT NULL,
        UNIQUE (chat_id, query)
    );
    CREATE TABLE seen_posts (post_id TEXT PRIMARY KEY, seen_at REAL NOT NULL);
    CREATE TABLE deliveries (
        chat_id INTEGER NOT NULL,
        post_id TEXT NOT NULL,
        subscriptions TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'dropped')),
        created_at REAL NOT NULL,
        sent_at REAL,
        PRIMARY KEY (chat_id, post_id)
    );
    CREATE INDEX deliveries_pending ON deliveries(status, chat_id);
    CREATE TABLE payloads (key TEXT PRIMARY KEY, value TEXT NOT NULL, created_at REAL NOT NULL);
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    """
    CREATE INDEX payloads_age ON payloads(created_at);
    """,
    """
    ALTER TABLE chats ADD COLUMN username TEXT;
    ALTER TABLE subscriptions ADD COLUMN origin TEXT NOT NULL DEFAULT 'chat';
    CREATE TABLE channel_admins (
        channel_id INTEGER NOT NULL REFERENCES chats(chat_id) ON DELETE CASCADE,
        admin_chat_id INTEGER NOT NULL,
        PRIMARY KEY (channel_id, admin_chat_id)
    );
    """,
]
#: Where a subscription came from: a chat's /subscribe, or the ARCHIVE_CHANNELS setting.
FROM_CHAT, FROM_SETTINGS = "chat", "settings"

#: Button payloads older than this (seconds) are deleted: their buttons answer "expired".
PAYLOAD_TTL = 30 * 86400
#: Pruning runs at most this often (seconds), from :meth:`SubscriberStore.put_payload`.
PRUNE_EVERY = 3600
#: Up to this many post ids are checked against ``seen_posts`` one by one (its primary key).
LOOKUP_ONE_BY_ONE = 1000


@dataclass(frozen=True, slots=True)
class Subscription:
    """A chat's standing query; an empty ``query`` means every new post."""

    id: int
    chat_id: int
    query: str


@dataclass(frozen=True, slots=True)
class Channel:
    """A channel the bot posts to: its id, its @username (if it has one) and whether it is active."""

    chat_id: int
    username: str | None
    active: bool = True

    @property
    def label(self) -> str:
        return f"@{self.username}" if self.username else str(self.chat_id)


@dataclass(frozen=True, slots=True)
class Delivery:
    """A post owed to a chat, and the subscriptions (queries) that matched it."""

    chat_id: int
    post_id: str
    queries: tuple[str, ...]


class SubscriberStore:
    """SQLite-backed store; safe to call from several threads."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
        self._lock = threading.RLock()
        self._pruned_at = float("-inf")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ---- plumbing ---------------------------------------------------------------------------
    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE … COMMIT, ROLLBACK on error)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, params: Iterable = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, tuple(params)).fetchall()

    def _migrate(self) -> None:
        with self._tx() as db:
            db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = db.execute("SELECT version FROM schema_version").fetchone()
            version = row[0] if row else 0
            if row is None:
                db.execute("INSERT INTO schema_version (version) VALUES (0)")
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in filter(str.strip, script.split(";")):
                    db.execute(statement)
                db.execute("UPDATE schema_version SET version = ?", (number,))

    @property
    def schema_version(self) -> int:
        return self._query("SELECT version FROM schema_version")[0][0]

    # ---- chats and subscriptions ------------------------------------------------------------
    def upsert_chat(self, chat_id: int, kind: str, language: str) -> None:
        """Record a chat (re-activating it if it had been deactivated)."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO chats (chat_id, kind, language, active, created_at) VALUES (?, ?, ?, 1, ?) "
                "ON CONFLICT(chat_id) DO UPDATE SET kind = excluded.kind, language = excluded.language, "
                "active = 1, deactivated_reason = NULL",
                (chat_id, kind, language, time.time()),
            )

    def add_subscription(self, chat_id: int, query: str, origin: str = FROM_CHAT) -> Subscription:
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO subscriptions (chat_id, query, created_at, origin) VALUES (?, ?, ?, ?)",
                (chat_id, query, time.time(), origin),
            )
            return Subscription(int(cur.lastrowid), chat_id, query)

    # ---- channels ---------------------------------------------------------------------------
    def upsert_channel(self, chat_id: int, username: str | None, language: str, admin_chat_id: int | None = None) -> None:
        """Record a channel (re-activating it) and, when given, a private chat of one of its
        administrators, which is told if the bot loses the right to post there."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO chats (chat_id, kind, language, active, created_at, username) VALUES (?, 'channel', ?, 1, ?, ?) "
                "ON CONFLICT(chat_id) DO UPDATE SET kind = 'channel', active = 1, deactivated_reason = NULL, "
                "username = excluded.username",
                (chat_id, language, time.time(), username),
            )
            if admin_chat_id is not None:
                db.execute("INSERT OR IGNORE INTO channel_admins (channel_id, admin_chat_id) VALUES (?, ?)",
                           (chat_id, admin_chat_id))

    def managed_channels(self, admin_chat_id: int) -> list[Channel]:
        """The channels whose subscriptions this private chat has set up."""
        rows = self._query(
            "SELECT c.chat_id, c.username, c.active FROM channel_admins a JOIN chats c ON c.chat_id = a.channel_id "
            "WHERE a.admin_chat_id = ? ORDER BY c.username, c.chat_id", (admin_chat_id,))
        return [Channel(r[0], r[1], bool(r[2])) for r in rows]

    def channel_admin_chats(self, channel_id: int) -> list[int]:
        return [r[0] for r in self._query("SELECT admin_chat_id FROM channel_admins WHERE channel_id = ?", (channel_id,))]

    def channels(self) -> list[Channel]:
        rows = self._query("SELECT chat_id, username, active FROM chats WHERE kind = 'channel' ORDER BY username, chat_id")
        return [Channel(r[0], r[1], bool(r[2])) for r in rows]

    def settings_subscriptions(self) -> list[tuple[Subscription, Channel]]:
        """The subscriptions kept from the ARCHIVE_CHANNELS setting, with their channels."""
        rows = self._query(
            "SELECT s.id, s.chat_id, s.query, c.username, c.active FROM subscriptions s JOIN chats c USING (chat_id) "
            "WHERE s.origin = ? ORDER BY c.username, s.id", (FROM_SETTINGS,))
        return [(Subscription(r[0], r[1], r[2]), Channel(r[1], r[3], bool(r[4]))) for r in rows]

    def replace_settings_subscriptions(self, wanted: list[tuple[int, str]]) -> None:
        """Make the settings' subscriptions exactly ``wanted`` ((channel id, query) pairs)."""
        with self._tx() as db:
            have = {(r[1], r[2]): r[0] for r in db.execute(
                "SELECT id, chat_id, query FROM subscriptions WHERE origin = ?", (FROM_SETTINGS,))}
            for key, sub_id in have.items():
                if key not in wanted:
                    db.execute("DELETE FROM subscriptions WHERE id = ?", (sub_id,))
            for chat_id, query in wanted:
                db.execute(
                    "INSERT INTO subscriptions (chat_id, query, created_at, origin) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT(chat_id, query) DO UPDATE SET origin = excluded.origin",
                    (chat_id, query, time.time(), FROM_SETTINGS),
                )

    # ---- groups that move -------------------------------------------------------------------
    def migrate_chat(self, old_id: int, new_id: int) -> bool:
        """A group became the supergroup ``new_id``: its subscriptions, deliveries (pending and
        sent, so nothing goes twice) and settings move there. False when there was nothing to move."""
        with self._tx() as db:
            row = db.execute("SELECT kind, language, created_at FROM chats WHERE chat_id = ?", (old_id,)).fetchone()
            if row is None:
                return False
            db.execute(
                "INSERT INTO chats (chat_id, kind, language, active, created_at) VALUES (?, 'supergroup', ?, 1, ?) "
                "ON CONFLICT(chat_id) DO UPDATE SET active = 1, deactivated_reason = NULL",
                (new_id, row[1], row[2]),
            )
            for table in ("subscriptions", "deliveries"):
                db.execute(f"UPDATE OR IGNORE {table} SET chat_id = ? WHERE chat_id = ?", (new_id, old_id))  # noqa: S608
                db.execute(f"DELETE FROM {table} WHERE chat_id = ?", (old_id,))  # noqa: S608 (already there)
            db.execute("UPDATE OR IGNORE channel_admins SET admin_chat_id = ? WHERE admin_chat_id = ?", (new_id, old_id))
            db.execute("DELETE FROM chats WHERE chat_id = ?", (old_id,))
            return True

    def find_subscription(self, chat_id: int, query: str) -> Subscription | None:
        rows = self._query("SELECT id FROM subscriptions WHERE chat_id = ? AND query = ?", (chat_id, query))
        return Subscription(rows[0][0], chat_id, query) if rows else None

    def subscriptions(self, chat_id: int) -> list[Subscription]:
        rows = self._query("SELECT id, query FROM subscriptions WHERE chat_id = ? ORDER BY id", (chat_id,))
        return [Subscription(r[0], chat_id, r[1]) for r in rows]

    def count_subscriptions(self, chat_id: int) -> int:
        return self._query("SELECT COUNT(*) FROM subscriptions WHERE chat_id = ?", (chat_id,))[0][0]

    def remove_subscription(self, chat_id: int, subscription_id: int) -> int:
        with self._tx() as db:
            return db.execute("DELETE FROM subscriptions WHERE chat_id = ? AND id = ?", (chat_id, subscription_id)).rowcount

    def remove_subscriptions(self, chat_id: int) -> int:
        with self._tx() as db:
            return db.execute("DELETE FROM subscriptions WHERE chat_id = ?", (chat_id,)).rowcount

    def active_subscriptions(self) -> list[Subscription]:
        """Every subscription of every chat that has not blocked the bot."""
        rows = self._query(
            "SELECT s.id, s.chat_id, s.query FROM subscriptions s JOIN chats c USING (chat_id) "
            "WHERE c.active = 1 ORDER BY s.chat_id, s.id"
        )
        return [Subscription(*r) for r in rows]

    def chat_languages(self) -> dict[int, str]:
        """Reply language of every known chat."""
        return {r[0]: r[1] for r in self._query("SELECT chat_id, language FROM chats")}

    def chat_kinds(self) -> dict[int, str]:
        """The kind ('private', 'group', 'supergroup', 'channel') of every known chat."""
        return {r[0]: r[1] for r in self._query("SELECT chat_id, kind FROM chats")}

    def deactivate_chat(self, chat_id: int, reason: str) -> bool:
        """The chat blocked the bot or is gone: stop pushing to it and drop what it was owed.
        True when it was active until now (so whoever must be told is told once)."""
        with self._tx() as db:
            was = db.execute("SELECT active FROM chats WHERE chat_id = ?", (chat_id,)).fetchone()
            db.execute("UPDATE chats SET active = 0, deactivated_reason = ? WHERE chat_id = ?", (reason[:200], chat_id))
            db.execute("UPDATE deliveries SET status = 'dropped' WHERE chat_id = ? AND status = 'pending'", (chat_id,))
            return bool(was and was[0])

    def is_active(self, chat_id: int) -> bool:
        rows = self._query("SELECT active FROM chats WHERE chat_id = ?", (chat_id,))
        return bool(rows and rows[0][0])

    # ---- push bookkeeping -------------------------------------------------------------------
    def has_baseline(self) -> bool:
        return bool(self._query("SELECT 1 FROM meta WHERE key = 'baseline'"))

    def unseen(self, post_ids: Iterable[str]) -> list[str]:
        """The ids not yet recorded as seen, in the given order (a few are looked up one by
        one; many, against the whole table at once)."""
        ids = list(post_ids)
        with self._lock:
            if len(ids) <= LOOKUP_ONE_BY_ONE:
                seen = {r[0] for p in ids for r in self._db.execute("SELECT post_id FROM seen_posts WHERE post_id = ?", (p,))}
            else:
                seen = {r[0] for r in self._db.execute("SELECT post_id FROM seen_posts")}
        return [p for p in ids if p not in seen]

    def record_new_posts(self, post_ids: Iterable[str], deliveries: Iterable[Delivery], *, baseline: bool = False) -> None:
        """Mark posts seen and queue their deliveries, atomically. ``baseline`` marks the first
        scan, whose posts are the existing archive and are not pushed."""
        now = time.time()
        with self._tx() as db:
            db.executemany("INSERT OR IGNORE INTO seen_posts (post_id, seen_at) VALUES (?, ?)", ((p, now) for p in post_ids))
            db.executemany(
                "INSERT OR IGNORE INTO deliveries (chat_id, post_id, subscriptions, status, created_at) "
                "VALUES (?, ?, ?, 'pending', ?)",
                ((d.chat_id, d.post_id, "\n".join(d.queries), now) for d in deliveries),
            )
            if baseline:
                db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('baseline', ?)", (str(now),))

    def pending(self) -> dict[int, list[Delivery]]:
        """Deliveries not yet sent, by chat, oldest first."""
        rows = self._query(
            "SELECT d.chat_id, d.post_id, d.subscriptions FROM deliveries d JOIN chats c USING (chat_id) "
            "WHERE d.status = 'pending' AND c.active = 1 ORDER BY d.chat_id, d.created_at, d.rowid"
        )
        out: dict[int, list[Delivery]] = {}
        for chat_id, post_id, subs in rows:
            out.setdefault(chat_id, []).append(Delivery(chat_id, post_id, tuple(subs.split("\n"))))
        return out

    def mark_sent(self, chat_id: int, post_ids: Iterable[str]) -> None:
        """Record that Telegram accepted the message carrying these posts (and count them)."""
        now = time.time()
        with self._tx() as db:
            sent = 0
            for post_id in post_ids:
                sent += db.execute(
                    "UPDATE deliveries SET status = 'sent', sent_at = ? WHERE chat_id = ? AND post_id = ? AND status = 'pending'",
                    (now, chat_id, post_id),
                ).rowcount
            self._add(db, "sent", sent)

    def mark_dropped(self, chat_id: int, post_ids: Iterable[str]) -> None:
        with self._tx() as db:
            db.executemany(
                "UPDATE deliveries SET status = 'dropped' WHERE chat_id = ? AND post_id = ? AND status = 'pending'",
                ((chat_id, p) for p in post_ids),
            )

    @staticmethod
    def _add(db: sqlite3.Connection, counter: str, by: int) -> None:
        db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + ?",
            (f"count:{counter}", str(by), by),
        )

    def bump(self, counter: str, by: int = 1) -> None:
        """Add to a named counter (failures…)."""
        with self._tx() as db:
            self._add(db, counter, by)

    def counter(self, counter: str) -> int:
        rows = self._query("SELECT value FROM meta WHERE key = ?", (f"count:{counter}",))
        return int(rows[0][0]) if rows else 0

    def overview(self) -> dict[str, int]:
        """Counts for /stats."""
        q = lambda sql: self._query(sql)[0][0]  # noqa: E731
        return {
            "chats": q("SELECT COUNT(DISTINCT chat_id) FROM subscriptions s JOIN chats c USING (chat_id) WHERE c.active = 1"),
            "subs": q("SELECT COUNT(*) FROM subscriptions"),
            "sent": self.counter("sent"),
            "failed": self.counter("failed"),
            "pending": q("SELECT COUNT(*) FROM deliveries WHERE status = 'pending'"),
            "channels": q("SELECT COUNT(*) FROM chats WHERE kind = 'channel' AND active = 1"),
        }

    # ---- button payloads --------------------------------------------------------------------
    def put_payload(self, value: str, now: float | None = None) -> str:
        """Store a long button payload; returns a short stable key for it. Payloads unused for
        :data:`PAYLOAD_TTL` are pruned here, at most once every :data:`PRUNE_EVERY` seconds."""
        now = time.time() if now is None else now
        digest = hashlib.blake2b(value.encode("utf-8"), digest_size=9).digest()
        key = base64.urlsafe_b64encode(digest).decode().rstrip("=")
        with self._tx() as db:
            if now - self._pruned_at >= PRUNE_EVERY:
                db.execute("DELETE FROM payloads WHERE created_at < ?", (now - PAYLOAD_TTL,))
                self._pruned_at = now
            db.execute(
                "INSERT INTO payloads (key, value, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET created_at = excluded.created_at",
                (key, value, now),
            )
        return key

    def get_payload(self, key: str) -> str | None:
        rows = self._query("SELECT value FROM payloads WHERE key = ?", (key,))
        return rows[0][0] if rows else None
