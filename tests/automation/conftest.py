"""Fixtures for automation tests: settings with a fixed signing key, a webhook receiver."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from keepwell.config import Settings
from tests.automation.receiver import Receiver

SECRET = "test-signing-secret-0123456789abcdef"


@pytest.fixture
def auto_settings(tmp_path: Path) -> Settings:
    """Settings with an isolated home (event store) and a known signing key."""
    return Settings(home=tmp_path / "home", secret_key=SECRET)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A running HTTP server on 127.0.0.1 that answers 200 and records each POST."""
    server = Receiver().start()
    yield server
    server.stop()
