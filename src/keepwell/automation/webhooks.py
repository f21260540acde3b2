"""Signed webhooks: POST a JSON body with an HMAC-SHA256 signature the receiver can verify.

Headers sent::

    Content-Type: application/json
    Keepwell-Signature: t=<unix seconds>,v1=<hex>
    Keepwell-Delivery: <the firing's dedup key>   (same on every retry: deduplicate on it)

``v1`` = HMAC-SHA256(secret, "<t>." + raw body bytes), hex. A receiver recomputes it with
:func:`verify` (or four lines of its own code) and rejects a timestamp older than a few
minutes, which stops replays.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

import httpx

from keepwell.errors import InvalidInput, KeepwellError

__all__ = [
    "DELIVERY_HEADER",
    "SIGNATURE_HEADER",
    "Delivery",
    "WebhookError",
    "post",
    "sign",
    "verify",
]

SIGNATURE_HEADER = "Keepwell-Signature"
DELIVERY_HEADER = "Keepwell-Delivery"
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class WebhookError(KeepwellError):
    """A webhook could not be delivered (after its retries)."""


@dataclass(frozen=True)
class Delivery:
    """A delivered webhook: the receiver's status code and the attempts it took."""

    status_code: int
    attempts: int


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The ``Keepwell-Signature`` header value for ``body`` sent at ``timestamp``.

    >>> sign(b"k" * 16, 1700000000, b"{}")[:15]
    't=1700000000,v1'
    """
    digest = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(
    secret: bytes, header: str, body: bytes, *, tolerance: int = 300, now: float | None = None
) -> bool:
    """True when ``header`` is a valid signature of ``body`` no older than ``tolerance`` s."""
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(fields["t"])
        given = fields["v1"]
    except (KeyError, ValueError):
        return False
    if abs((now if now is not None else time.time()) - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, given)


def post(
    *,
    url: str,
    payload: dict[str, Any],
    secret: bytes,
    delivery_id: str,
    timeout: float = 10.0,
    retries: int = 2,
    backoff: float = 0.5,
    transport: httpx.BaseTransport | None = None,
) -> Delivery:
    """POST ``payload`` signed with ``secret``; retry network errors, 408/429/5xx.

    Raises:
        InvalidInput: ``url`` is not an http(s) URL.
        WebhookError: every attempt failed, or the receiver answered another 4xx.
    """
    try:
        request_url = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise InvalidInput(f"bad webhook URL {url!r}: {exc}", field="url") from None
    if request_url.scheme not in ("http", "https") or not request_url.host:
        raise InvalidInput(f"bad webhook URL {url!r}", field="url", expected="http(s)://host/...")
    body = json.dumps(payload, sort_keys=True, default=str).encode()
    last = ""
    with httpx.Client(timeout=timeout, transport=transport, follow_redirects=False) as client:
        for attempt in range(1, retries + 2):
            headers = {
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign(secret, int(time.time()), body),
                DELIVERY_HEADER: delivery_id,
                "User-Agent": "keepwell-webhooks",
            }
            try:
                response = client.post(request_url, content=body, headers=headers)
            except httpx.TimeoutException:
                last = f"timed out after {timeout:g} s"
            except httpx.TransportError as exc:
                last = f"cannot connect ({exc.__class__.__name__}: {exc})"
            else:
                if response.is_success:
                    return Delivery(status_code=response.status_code, attempts=attempt)
                last = f"HTTP {response.status_code}"
                if response.status_code not in RETRY_STATUSES:
                    break
            if attempt <= retries:
                time.sleep(backoff * 2 ** (attempt - 1))
    raise WebhookError(f"webhook POST {url} failed after {attempt} attempt(s): {last}")
