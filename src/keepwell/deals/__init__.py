"""The deal pipeline for upsell and renewals: stages, deals, stage history, weighted value.

See ``docs/deals.md``. Service: :mod:`keepwell.deals.service`.
"""
