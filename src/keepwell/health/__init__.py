"""Customer health: configurable weighted components -> 0-100 score, bands, history, backtest.

See ``docs/health.md``. Public API::

    from keepwell.health import HealthConfig, load_config, score_health, backtest_health
"""

from importlib import import_module

_LAZY = {
    "HealthConfig": "keepwell.health.config",
    "backtest_health": "keepwell.health.service",
    "compute_health": "keepwell.health.service",
    "history": "keepwell.health.service",
    "load_config": "keepwell.health.config",
    "score_health": "keepwell.health.service",
}
"""Public names and their modules, imported on first use (keeps the CLI start-up light)."""

__all__ = [
    "HealthConfig",
    "backtest_health",
    "compute_health",
    "history",
    "load_config",
    "score_health",
]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
