"""keepwell's exceptions and warnings.

::

    KeepwellError                 base of every error keepwell raises on purpose
    ├── NotFound                  a named thing (customer, import run, ...) does not exist
    ├── AlreadyExists             creating something whose unique key is taken
    ├── InvalidInput              input that breaks a rule; names row, field and expectation
    │   └── ImportFileError       a whole import file is unusable (empty, bad encoding, no header)
    └── StoreError                the data store is unreachable or not migrated

    KeepwellWarning               base of keepwell's warnings (caveats, not failures)

Services raise these; the CLI prints one line plus a hint and exits non-zero; the API maps
them to problem-details responses.
"""

from __future__ import annotations


class KeepwellError(Exception):
    """Base class of keepwell's errors. ``hint`` says what to do about it."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class NotFound(KeepwellError):
    """Raised when a looked-up thing does not exist."""


class AlreadyExists(KeepwellError):
    """Raised when a unique key (external id, email, name) is already taken."""


class InvalidInput(KeepwellError):
    """Raised for input that breaks a rule.

    Args:
        message: what is wrong, in words.
        row: 1-based data row (header not counted), when the input is tabular.
        field: the field/column at fault.
        expected: what would have been accepted.
    """

    def __init__(
        self,
        message: str,
        *,
        row: int | None = None,
        field: str | None = None,
        expected: str | None = None,
        hint: str | None = None,
    ) -> None:
        parts = []
        if row is not None:
            parts.append(f"row {row}")
        if field is not None:
            parts.append(f"field {field!r}")
        where = ", ".join(parts)
        text = f"{where}: {message}" if where else message
        if expected:
            text += f" (expected {expected})"
        super().__init__(text, hint=hint)
        self.row = row
        self.field = field
        self.expected = expected


class ImportFileError(InvalidInput):
    """Raised when an import file cannot be used at all (empty, undecodable, missing columns)."""


class StoreError(KeepwellError):
    """Raised when the operational or event store is unreachable or not migrated."""


class KeepwellWarning(UserWarning):
    """Base class of keepwell's warnings."""
