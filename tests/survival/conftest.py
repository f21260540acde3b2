"""Survival fixtures: a small SaaS demo store per backend, built once for the package."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from keepwell.config import Settings
from tests.health.homes import BACKENDS, demo_settings
from tests.metrics.conftest import duckdb_con, make_sources

__all__ = ["duckdb_con", "make_sources"]


@pytest.fixture(scope="package", params=BACKENDS)
def saas_settings(request, tmp_path_factory) -> Iterator[Settings]:
    """Settings of a 300-customer, 12-month SaaS demo on SQLite and on PostgreSQL."""
    with demo_settings(request.param, tmp_path_factory.mktemp("survival")) as settings:
        yield settings
