"""CLV fixtures: small SaaS and shop demo stores per backend, built once for the package."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from keepwell.config import Settings
from tests.health.homes import BACKENDS, demo_settings
from tests.metrics.conftest import duckdb_con, make_sources

__all__ = ["duckdb_con", "make_sources"]


@pytest.fixture(scope="package", params=BACKENDS)
def saas_settings(request, tmp_path_factory) -> Iterator[Settings]:
    with demo_settings(request.param, tmp_path_factory.mktemp("clv-saas")) as settings:
        yield settings


@pytest.fixture(scope="package", params=BACKENDS)
def shop_settings(request, tmp_path_factory) -> Iterator[Settings]:
    with demo_settings(
        request.param, tmp_path_factory.mktemp("clv-shop"), business="shop", customers=400
    ) as settings:
        yield settings


def cli_env(monkeypatch, settings: Settings) -> None:
    """Point the CLI at ``settings``' store."""
    monkeypatch.setenv("KEEPWELL_HOME", str(settings.home))
    if settings.database_url:
        monkeypatch.setenv("KEEPWELL_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("COLUMNS", "200")
