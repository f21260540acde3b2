"""The retention analytics engine: every churn, retention, revenue and engagement metric.

Each metric is a function from :class:`~keepwell.metrics.sources.Sources` (Ibis tables on one
backend) and typed parameters to a lazy ``ibis.Table``; nothing runs until the caller executes
it, on DuckDB (default), PostgreSQL or PySpark unchanged. Definitions: ``docs/metrics.md``.
"""
