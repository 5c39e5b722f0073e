"""The outbox journal of `mailprofile send`: SQLite in WAL mode, one row per (batch, message).

Exactly-once over SMTP is impossible (RFC 1047: if the connection drops between the final "." and the
server's reply, the message may have been delivered without the sender knowing). So every state change is
committed (synchronous=FULL) before the next network step:

  pending --(just before MAIL FROM)--> sending --(250 after DATA)--> sent
                                          |--(5xx)--> failed (with the reply)
                                          |--(4xx, or the connection drops before DATA ends)--> pending
  a row still 'sending' when a run starts: the previous run died inside that gap --> uncertain

A batch is one build of OUT (the sha256 of its manifest.json): re-running the same build resumes it and
never sends a 'sent' row again; a new build is a new batch. The journal holds addresses, Message-IDs, states
and SMTP replies, never a password or a message body.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from generator.errors import BuildError

State = Literal["pending", "sending", "sent", "failed", "uncertain"]
STATES: tuple[State, ...] = ("pending", "sending", "sent", "failed", "uncertain")

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    batch TEXT NOT NULL,
    message_id TEXT NOT NULL,
    account TEXT NOT NULL,
    recipient TEXT NOT NULL,
    content TEXT NOT NULL,
    path TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'failed', 'uncertain')),
    attempts INTEGER NOT NULL DEFAULT 0,
    reply TEXT,
    date TEXT,
    updated REAL NOT NULL,
    PRIMARY KEY (batch, message_id)
);
CREATE INDEX IF NOT EXISTS outbox_message ON outbox (message_id, state);
"""


@dataclass(frozen=True)
class Row:
    batch: str
    message_id: str
    account: str
    recipient: str
    content: str
    path: str
    state: State
    attempts: int
    reply: str | None
    date: str | None


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        if not path.parent.is_dir():  # SQLite would say "unable to open database file", which reads as corruption
            raise BuildError(f"{path}: the folder {path.parent} does not exist; create it or give --journal a file "
                             "in an existing folder")
        existed = path.exists() and path.stat().st_size > 0
        try:
            # isolation_level=None: we open transactions ourselves, so each state change is one explicit commit.
            self.db = sqlite3.connect(path, isolation_level=None, timeout=30)
            if existed:
                tables = {row[0] for row in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
                if tables != {"outbox"}:  # someone else's database (automx2's, say): never write into it
                    self.db.close()
                    raise BuildError(f"{path}: an SQLite database that is not a mailprofile outbox journal (tables: "
                                     f"{', '.join(sorted(tables)) or 'none'}); give --journal a new file")
            self._lock()
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise BuildError(f"{path}: not an outbox journal ({exc}); give the journal of the earlier sends (from a "
                             "backup if this one is damaged), or a new file for a first send: a new journal has no "
                             "record of what was sent, so every message would go out again") from None

    def _lock(self) -> None:
        """One run per journal: a second one would take the first's in-flight row for a crash ('uncertain') and
        send every message the first had not finished yet a second time. flock, not SQLite's own fcntl locks:
        held for the whole run, released by the kernel when the process dies (SIGKILL included)."""
        self.lock_fd = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(self.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.lock_fd)
            self.db.close()
            raise BuildError(f"{self.path}: another mailprofile send is using this journal; wait for it to finish "
                             "(two at once would send the same messages twice)") from None

    def close(self) -> None:
        self.db.close()
        os.close(self.lock_fd)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def recover(self) -> list[Row]:
        """Rows a killed run left 'sending' become 'uncertain' (returned, for the report)."""
        with self._tx() as db:
            rows = self._rows(db.execute("SELECT * FROM outbox WHERE state = 'sending'"))
            db.execute("UPDATE outbox SET state = 'uncertain', updated = ? WHERE state = 'sending'", (time.time(),))
        return rows

    def add(self, batch: str, message_id: str, account: str, recipient: str, content: str, path: str) -> None:
        with self._tx() as db:
            db.execute("INSERT OR IGNORE INTO outbox (batch, message_id, account, recipient, content, path, state, "
                       "updated) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?)",
                       (batch, message_id, account, recipient, content, path, time.time()))

    def get(self, batch: str, message_id: str) -> Row | None:
        rows = self._rows(self.db.execute("SELECT * FROM outbox WHERE batch = ? AND message_id = ?",
                                          (batch, message_id)))
        return rows[0] if rows else None

    def sent_elsewhere(self, batch: str, message_id: str) -> bool:
        """Whether this exact message (same Message-ID, i.e. same content and recipient) was sent in another batch."""
        return self.db.execute("SELECT 1 FROM outbox WHERE message_id = ? AND batch != ? AND state = 'sent' LIMIT 1",
                               (message_id, batch)).fetchone() is not None

    def start(self, batch: str, message_id: str, date: str) -> None:
        """pending/uncertain -> sending, committed before MAIL FROM; the Date header is fixed at the first try."""
        with self._tx() as db:
            db.execute("UPDATE outbox SET state = 'sending', attempts = attempts + 1, date = COALESCE(date, ?), "
                       "updated = ? WHERE batch = ? AND message_id = ?", (date, time.time(), batch, message_id))

    def finish(self, batch: str, message_id: str, state: State, reply: str | None) -> None:
        with self._tx() as db:
            db.execute("UPDATE outbox SET state = ?, reply = ?, updated = ? WHERE batch = ? AND message_id = ?",
                       (state, reply, time.time(), batch, message_id))

    def rows(self, batch: str) -> list[Row]:
        return self._rows(self.db.execute("SELECT * FROM outbox WHERE batch = ? ORDER BY rowid", (batch,)))

    @staticmethod
    def _rows(cursor: sqlite3.Cursor) -> list[Row]:
        return [Row(batch=r[0], message_id=r[1], account=r[2], recipient=r[3], content=r[4], path=r[5], state=r[6],
                    attempts=r[7], reply=r[8], date=r[9]) for r in cursor.fetchall()]
