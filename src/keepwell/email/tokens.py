"""Signed tokens for the links inside e-mails: unsubscribe, open pixel, click redirect.

Tokens are signed (HMAC, itsdangerous) with the settings secret and a salt per purpose, so a
token for one purpose is worthless for another, and a click token only ever redirects to the
URL it was signed with (no open redirect). They do not expire: an unsubscribe link must work
for as long as the e-mail sits in someone's inbox.

URLs (served by the web app under ``settings.base_url``)::

    /u/<token>   unsubscribe (GET shows a page, POST = RFC 8058 one-click)
    /o/<token>   open pixel (a 1x1 GIF)
    /c/<token>   click: records the click, redirects to the signed URL
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from itsdangerous import BadSignature, URLSafeSerializer

from keepwell.config import Settings
from keepwell.email.models import EmailMessage
from keepwell.errors import InvalidInput

__all__ = [
    "check_link",
    "click_url",
    "open_pixel_url",
    "read_click",
    "read_open",
    "read_unsubscribe",
    "unsubscribe_url",
]

_PURPOSES = ("unsubscribe", "open", "click")


@lru_cache(maxsize=32)
def _signer(key: bytes, purpose: str) -> URLSafeSerializer:
    return URLSafeSerializer(key, salt=f"keepwell.email.{purpose}")


def _serializer(settings: Settings, purpose: str) -> URLSafeSerializer:
    return _signer(settings.resolved_secret_key(), purpose)


def _base(settings: Settings) -> str:
    return settings.base_url.rstrip("/")


def check_link(url: str) -> str:
    """``url`` if it is an absolute http(s) URL without line breaks; else :class:`InvalidInput`."""
    if not isinstance(url, str) or any(ch in url for ch in "\r\n\0\t "):
        raise InvalidInput(f"{url!r} is not a link", field="url", expected="an http(s) URL")
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise InvalidInput(
            f"{url!r} is not an absolute http(s) URL", field="url", expected="https://..."
        )
    return url


def unsubscribe_url(settings: Settings, message: EmailMessage) -> str:
    """The one-click unsubscribe URL of ``message`` (signs its id and recipient address)."""
    token = _serializer(settings, "unsubscribe").dumps({"m": message.id, "a": message.to_address})
    return f"{_base(settings)}/u/{token}"


def open_pixel_url(settings: Settings, message: EmailMessage) -> str:
    """The URL of ``message``'s open-tracking pixel."""
    return f"{_base(settings)}/o/{_serializer(settings, 'open').dumps({'m': message.id})}"


def click_url(settings: Settings, message: EmailMessage, url: str) -> str:
    """A tracked link to ``url`` (absolute http/https) for ``message``."""
    token = _serializer(settings, "click").dumps({"m": message.id, "u": check_link(url)})
    return f"{_base(settings)}/c/{token}"


def _read(settings: Settings, purpose: str, token: str, keys: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(token, str) or not token or len(token) > 4096:
        raise InvalidInput("the link is not valid", field="token", expected="a signed token")
    try:
        payload = _serializer(settings, purpose).loads(token)
    except BadSignature:
        raise InvalidInput(
            "the link is not valid (it was changed or not made by this keepwell)",
            field="token",
            expected=f"a signed {purpose} token",
        ) from None
    if not isinstance(payload, dict) or any(key not in payload for key in keys):
        raise InvalidInput("the link is not valid", field="token", expected="a signed token")
    if not isinstance(payload["m"], int):
        raise InvalidInput("the link is not valid", field="token", expected="a signed token")
    return payload


def read_unsubscribe(settings: Settings, token: str) -> tuple[int, str]:
    """(message id, address) of a valid unsubscribe token; :class:`InvalidInput` otherwise."""
    payload = _read(settings, "unsubscribe", token, ("m", "a"))
    return payload["m"], str(payload["a"])


def read_open(settings: Settings, token: str) -> int:
    """The message id of a valid open-pixel token."""
    return _read(settings, "open", token, ("m",))["m"]


def read_click(settings: Settings, token: str) -> tuple[int, str]:
    """(message id, target URL) of a valid click token; the URL is re-checked."""
    payload = _read(settings, "click", token, ("m", "u"))
    return payload["m"], check_link(str(payload["u"]))
