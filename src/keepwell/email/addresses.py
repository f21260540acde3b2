"""E-mail address and header checks shared by the outbox and the sender."""

from __future__ import annotations

from email.headerregistry import Address
from email.utils import parseaddr

from keepwell.errors import InvalidInput

__all__ = ["check_header_value", "normalize_address", "suppression_key"]


def normalize_address(value: str, *, field: str = "to") -> str:
    """The bare address ``local@domain`` of ``value``, checked; raises :class:`InvalidInput`.

    >>> normalize_address("  Ana@Example.com ")
    'Ana@Example.com'
    """
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("an e-mail address is required", field=field, expected="x@example.com")
    text = value.strip()
    if any(ch in text for ch in "\r\n\0"):
        raise InvalidInput(f"{text!r} contains a line break", field=field, expected="one address")
    if not text.isascii():
        raise InvalidInput(
            f"{text!r} is not an ASCII address (internationalised addresses are not supported)",
            field=field,
            expected="x@example.com",
        )
    _, bare = parseaddr(text)
    try:
        parsed = Address(addr_spec=bare) if bare == text else None
    except (ValueError, IndexError):
        parsed = None
    if parsed is None or not parsed.username or "." not in parsed.domain or " " in bare:
        raise InvalidInput(
            f"{text!r} is not an e-mail address", field=field, expected="x@example.com"
        )
    return bare


def suppression_key(address: str) -> str:
    """How suppressed addresses are compared: trimmed and lower-case.

    >>> suppression_key(" Ana@Example.COM")
    'ana@example.com'
    """
    return address.strip().lower()


def check_header_value(name: str, value: str) -> str:
    """Refuse header injection: no CR/LF/NUL in a header value."""
    if not isinstance(value, str):
        raise InvalidInput(f"header value must be text, got {type(value).__name__}", field=name)
    if any(ch in value for ch in "\r\n\0"):
        raise InvalidInput("a header value may not contain a line break", field=name)
    return value
