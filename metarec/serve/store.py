"""Users the service remembers: profile text and interaction events in SQLite (the standard library's
`sqlite3`), so a user's list survives a restart.

Each write is one transaction (a crash leaves a user as before or as after an event, never half),
and writes to one user are serialised by a per-user lock, so events sent concurrently are neither
lost nor applied twice. Events are kept in arrival order with their optional time; a user's support
set is their events ordered by (time, arrival), each item's newest rating counting.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, profile TEXT, version INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS events (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    item_id TEXT NOT NULL,       -- JSON, so 1 and "1" stay apart
    rating REAL,
    time REAL,
    PRIMARY KEY (user_id, seq)
);
"""


@dataclass(frozen=True)
class StoredUser:
    """A user as stored: profile text, their events' (item_id, rating) in support order, and a version
    that every write raises (what a cache of adapted users keys on)."""

    user_id: str
    profile: str | None
    support: list[tuple[object, float | None]]
    version: int


class UserStore:
    """Profiles and events in a SQLite file (`path`), or in memory with ":memory:"."""

    def __init__(self, path: str | Path = ":memory:") -> None:
        self.path = str(path)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA foreign_keys = ON")
        if self.path != ":memory:":
            self._db.execute("PRAGMA journal_mode = WAL")
        self._db.executescript(SCHEMA)
        self._guard = threading.Lock()  # one statement at a time on the shared connection
        self._locks: dict[str, threading.Lock] = {}

    def lock(self, user_id: str) -> threading.Lock:
        """The lock that serialises writes to one user."""
        with self._guard:
            return self._locks.setdefault(user_id, threading.Lock())

    @contextmanager
    def _transaction(self):
        with self._guard:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def put_user(self, user_id: str, profile: str | None) -> bool:
        """Create the user or replace their profile; True if they were new."""
        with self._transaction() as db:
            new = db.execute("SELECT 1 FROM users WHERE id = ?", (user_id,)).fetchone() is None
            db.execute("INSERT INTO users (id, profile, version) VALUES (?, ?, 1) ON CONFLICT(id) DO UPDATE "
                       "SET profile = excluded.profile, version = users.version + 1", (user_id, profile))
        return new

    def add_events(self, user_id: str, events: list[tuple[object, float | None, float | None]]) -> int:
        """Append (item_id, rating, time) events in one transaction; the user is created if new.
        Returns how many events the user has."""
        with self._transaction() as db:
            db.execute("INSERT INTO users (id, profile, version) VALUES (?, NULL, 0) ON CONFLICT(id) DO NOTHING",
                       (user_id,))
            start = db.execute("SELECT COALESCE(MAX(seq), -1) + 1 FROM events WHERE user_id = ?", (user_id,)).fetchone()[0]
            db.executemany("INSERT INTO events (user_id, seq, item_id, rating, time) VALUES (?, ?, ?, ?, ?)",
                           [(user_id, start + n, json.dumps(i), r, t) for n, (i, r, t) in enumerate(events)])
            db.execute("UPDATE users SET version = version + 1 WHERE id = ?", (user_id,))
            return start + len(events)

    def get(self, user_id: str) -> StoredUser | None:
        """The user, or None if unknown. Support: events by (time, arrival), an item's newest rating
        counting and the item taking its newest place."""
        with self._guard:
            row = self._db.execute("SELECT profile, version FROM users WHERE id = ?", (user_id,)).fetchone()
            if row is None:
                return None
            events = self._db.execute(
                "SELECT item_id, rating FROM events WHERE user_id = ? ORDER BY COALESCE(time, -1e300), seq",
                (user_id,)).fetchall()
        last: dict[str, tuple[object, float | None]] = {}
        for item, rating in events:
            last.pop(item, None)  # a re-rating moves the item to its newest place
            last[item] = (json.loads(item), rating)
        return StoredUser(user_id, row[0], list(last.values()), row[1])

    def delete(self, user_id: str) -> bool:
        """Forget the user and their events; False if unknown."""
        with self._transaction() as db:
            return db.execute("DELETE FROM users WHERE id = ?", (user_id,)).rowcount > 0

    def close(self) -> None:
        self._db.close()
