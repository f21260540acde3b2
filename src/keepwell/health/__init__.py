"""Customer health: configurable weighted components -> 0-100 score, bands, history, backtest.

See ``docs/health.md``. Public API::

    from keepwell.health import HealthConfig, load_config, score_health, backtest_health
"""

from keepwell.health.config import HealthConfig, load_config
from keepwell.health.service import backtest_health, compute_health, history, score_health

__all__ = [
    "HealthConfig",
    "backtest_health",
    "compute_health",
    "history",
    "load_config",
    "score_health",
]
