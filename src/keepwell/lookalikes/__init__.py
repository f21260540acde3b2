"""Lookalikes: customers or prospects most similar to the best retained customers
(scikit-learn nearest neighbours on behaviour and firmographics). See ``docs/lookalikes.md``."""

from keepwell.lookalikes.service import LookalikeResult, find_lookalikes

__all__ = ["LookalikeResult", "find_lookalikes"]
