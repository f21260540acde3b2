"""The sent-log: one append-only file per sender run, listing the messages the SMTP server
accepted, written the moment the server says 250 (before the database hears about it).

It bridges the gap between the SMTP transaction and the grouped database update. A running
sender holds an exclusive ``flock`` on its file; when the lock can be taken, the sender is
gone and its file tells which of its ``sending`` rows were delivered. Appends go straight to
the kernel (``os.write`` on an ``O_APPEND`` descriptor), so they survive the process being
killed; ``sync()`` makes them survive a power cut too.
"""

from __future__ import annotations

import fcntl
import os
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["SentLog", "read_dead_log", "remove_log"]


class SentLog:
    """The current run's sent-log (locked while the run lives)."""

    def __init__(self, directory: Path, run_id: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"{run_id}.log"
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def sent(self, message_id: int, at: datetime) -> None:
        """Record that the server accepted outbox row ``message_id`` at ``at``."""
        os.write(self.fd, f"{message_id} {at.timestamp():.6f}\n".encode())

    def sync(self) -> None:
        """Flush the log to disk (called before each grouped database update)."""
        os.fsync(self.fd)

    def close(self, *, remove: bool) -> None:
        """Release the lock; ``remove`` deletes the file (everything in it is committed)."""
        if remove:
            self.path.unlink(missing_ok=True)
        os.close(self.fd)


def read_dead_log(directory: Path, run_id: str) -> dict[int, datetime] | None:
    """Sent rows of run ``run_id`` if that run is dead and its log is here; else None.

    Returns None when the file does not exist (another machine's sender, or nothing logged
    under this home) or when its owner still holds the lock (the run is alive).
    """
    path = directory / f"{run_id}.log"
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None
        sent: dict[int, datetime] = {}
        with os.fdopen(os.dup(fd), "r", encoding="ascii") as handle:
            for line in handle:
                parts = line.split()
                if len(parts) != 2 or not line.endswith("\n"):
                    continue  # a torn last line: that message was not fully logged
                sent[int(parts[0])] = datetime.fromtimestamp(float(parts[1]), UTC)
        return sent
    finally:
        os.close(fd)


def remove_log(directory: Path, run_id: str) -> None:
    """Delete a dead run's log once its rows are resolved."""
    (directory / f"{run_id}.log").unlink(missing_ok=True)
