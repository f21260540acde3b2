"""keepwell: keep the customers you already have.

A self-hosted customer-retention platform. The public Python API is listed in ``__all__``.
"""

from importlib.metadata import PackageNotFoundError, version

from keepwell.config import Settings
from keepwell.errors import AlreadyExists, InvalidInput, KeepwellError, NotFound

try:
    __version__ = version("keepwell")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = [
    "AlreadyExists",
    "InvalidInput",
    "KeepwellError",
    "NotFound",
    "Settings",
    "__version__",
]
