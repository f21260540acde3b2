from tests.metrics.conftest import duckdb_con, make_sources

__all__ = ["duckdb_con", "make_sources"]
