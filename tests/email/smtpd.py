"""A real SMTP server for the tests (aiosmtpd on 127.0.0.1) that records what it receives.

``refuse`` maps a recipient address to the replies its RCPT commands get, in order (e.g.
``["451 4.3.0 try later"]`` refuses once, then accepts); an address whose list is empty is
accepted. ``hold_after = n`` makes every RCPT wait (without blocking the server) once n
messages were accepted, until ``release`` is set.
"""

from __future__ import annotations

import asyncio
import email
import socket
import threading
import time
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller


@dataclass
class Received:
    """One message the server accepted."""

    mail_from: str
    rcpt_to: list[str]
    data: bytes
    at: float

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=policy.default)


@dataclass
class Recorder:
    """aiosmtpd handler: keeps accepted messages, refuses as configured."""

    refuse: dict[str, list[str]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    peers: set[tuple[str, int]] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    hold_after: int | None = None
    in_flight: int = 0  # transactions past RCPT whose DATA is not done
    release: threading.Event = field(default_factory=threading.Event)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        while (
            self.hold_after is not None
            and len(self.received) >= self.hold_after
            and not self.release.is_set()
        ):
            await asyncio.sleep(0.005)
        replies = self.refuse.get(address.lower())
        if replies:
            return replies.pop(0)
        if not envelope.rcpt_tos:
            with self.lock:
                self.in_flight += 1
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.in_flight -= 1
            self.peers.add(tuple(session.peer[:2]))
            self.received.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content, time.time())
            )
        return "250 Message accepted for delivery"

    def by_recipient(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for item in self.received:
            for rcpt in item.rcpt_to:
                counts[rcpt] = counts.get(rcpt, 0) + 1
        return counts


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(recorder: Recorder) -> Controller:
    controller = Controller(recorder, hostname="127.0.0.1", port=free_port())
    controller.start()
    return controller
