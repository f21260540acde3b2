"""Lookalike fixtures: the hand-made store's Ibis sources and a demo store per backend."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from keepwell.config import Settings
from tests.health.homes import BACKENDS, demo_settings
from tests.metrics.conftest import duckdb_con, make_sources

__all__ = ["duckdb_con", "make_sources"]


@pytest.fixture(scope="package", params=BACKENDS)
def saas_settings(request, tmp_path_factory) -> Iterator[Settings]:
    with demo_settings(request.param, tmp_path_factory.mktemp("lookalikes")) as settings:
        yield settings
