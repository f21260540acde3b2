"""Turn an outbox row into RFC 5322 bytes: headers, multipart/alternative text + HTML.

The standard library's ``email.message.EmailMessage`` takes ~1.5 ms to build and serialise
one multipart message here, more than the SMTP transaction itself, so the sender writes the
(fixed) MIME structure directly and leaves the encodings to the standard library's C
helpers: quoted-printable bodies (``binascii.b2a_qp``) and RFC 2047 encoded words
(``email.header``) for non-ASCII header text. The result is parsed back by ``email`` in the
tests.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.header import Header
from email.utils import formataddr, formatdate, parseaddr
from typing import Any

from keepwell.errors import InvalidInput

__all__ = ["Composer", "OutgoingMessage", "message_id_for"]

_CRLF = b"\r\n"


@dataclass(frozen=True)
class OutgoingMessage:
    """The fields of an outbox row the sender needs (a plain value, safe across threads)."""

    id: int
    to_address: str
    subject: str
    html: str | None
    text: str | None
    kind: str
    customer_id: int | None = None
    headers: Mapping[str, Any] = field(default_factory=dict)


def _header_text(value: str) -> str:
    """ASCII as is; anything else as RFC 2047 encoded words (folded)."""
    if value.isascii():
        return value
    return Header(value, "utf-8", maxlinelen=76).encode("\r\n ")


def _body(text: str) -> bytes:
    data = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    return binascii.b2a_qp(data, quotetabs=False, istext=True).replace(b"\n", _CRLF)


def message_id_for(message_id: int, *, secret: bytes, domain: str) -> str:
    """Deterministic Message-ID of outbox row ``message_id``: the same on every attempt.

    An HMAC of the row id with the installation's secret keeps ids unique across keepwell
    installations without storing anything before sending.
    """
    tag = hmac.new(secret, str(message_id).encode(), hashlib.sha256).hexdigest()[:20]
    return f"<{message_id}.{tag}@{domain}>"


class Composer:
    """Builds message bytes for one sender configuration (From, secret, unsubscribe URLs)."""

    def __init__(self, *, mail_from: str, secret: bytes, unsubscribe_url) -> None:
        name, address = parseaddr(mail_from)
        if "@" not in address:
            raise InvalidInput(
                f"mail_from {mail_from!r} has no address",
                field="mail_from",
                expected="'Name <noreply@example.com>'",
            )
        self.envelope_from = address
        self.domain = address.rsplit("@", 1)[1]
        self.from_header = formataddr((name, address), charset="utf-8")
        self.secret = secret
        self.unsubscribe_url = unsubscribe_url

    def message_id(self, message_id: int) -> str:
        """The Message-ID of outbox row ``message_id`` (see :func:`message_id_for`)."""
        return message_id_for(message_id, secret=self.secret, domain=self.domain)

    def compose(self, message: OutgoingMessage, *, date: float | None = None) -> bytes:
        """The full message: headers, then the text and HTML alternatives."""
        msgid = self.message_id(message.id)
        boundary = f"==kw-{msgid[1:21]}-{message.id}=="
        lines = [
            f"From: {self.from_header}",
            f"To: {message.to_address}",
            f"Subject: {_header_text(message.subject)}",
            f"Date: {formatdate(date, usegmt=True)}",
            f"Message-ID: {msgid}",
            "MIME-Version: 1.0",
        ]
        if message.kind != "transactional":
            lines.append(f"List-Unsubscribe: <{self.unsubscribe_url(message)}>")
            lines.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click")
        for name, value in (message.headers or {}).items():
            lines.append(f"{name}: {_header_text(str(value))}")
        parts = []
        if message.text:
            parts.append((b"text/plain", _body(message.text)))
        if message.html:
            parts.append((b"text/html", _body(message.html)))
        if len(parts) == 1:
            kind, body = parts[0]
            head = "\r\n".join(lines).encode("utf-8")
            return b"".join(
                (
                    head,
                    b"\r\nContent-Type: " + kind + b'; charset="utf-8"\r\n',
                    b"Content-Transfer-Encoding: quoted-printable\r\n\r\n",
                    body,
                    _CRLF,
                )
            )
        lines.append(f'Content-Type: multipart/alternative; boundary="{boundary}"')
        out = ["\r\n".join(lines).encode("utf-8"), b"\r\n\r\n"]
        mark = boundary.encode("ascii")
        for kind, body in parts:
            out += [
                b"--" + mark + _CRLF,
                b"Content-Type: " + kind + b'; charset="utf-8"\r\n',
                b"Content-Transfer-Encoding: quoted-printable\r\n\r\n",
                body,
                _CRLF,
            ]
        out += [b"--" + mark + b"--" + _CRLF]
        return b"".join(out)
