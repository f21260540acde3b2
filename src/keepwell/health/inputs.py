"""The inputs of the health components, per (customer, as_of), leak-free.

Everything comes from :func:`keepwell.metrics.features.customer_features` (snapshot at local
midnight at the start of ``as_of``; only data strictly before it) plus two small queries with
the same point-in-time rule:

* ``payment_issues_90``: invoices issued in the 90 days before the snapshot whose due instant
  (``due_at``, or ``issued_at`` when there is none) plus one day lies before the snapshot and
  that were not paid by then (``paid_at`` null, later than the snapshot, or more than a day
  after the due instant). Failed card charges, overdue transfers and late payments all count;
  void and draft invoices do not. A payment made after the snapshot is unknown at the
  snapshot, so it does not help.
* ``nps`` / ``csat``: the latest answer of that kind in the 365 days before the snapshot.

Rows: customers active at the snapshot (as in the features table).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import ibis
import ibis.expr.types as ir
import pandas as pd

from keepwell.metrics import periods as P
from keepwell.metrics.features import customer_features
from keepwell.metrics.sources import Sources

__all__ = ["SURVEY_LOOKBACK_DAYS", "health_inputs", "latest_survey_scores", "payment_issues"]

SURVEY_LOOKBACK_DAYS = 365
PAYMENT_LOOKBACK_DAYS = 90


def _snapshots(days: Sequence[date], tz: str) -> ir.Table:
    df = pd.DataFrame(
        {
            "as_of": list(days),
            "as_of_at": [P.to_utc_naive(d, tz) for d in days],
            "pay_from": [
                P.to_utc_naive(d - timedelta(days=PAYMENT_LOOKBACK_DAYS), tz) for d in days
            ],
            "survey_from": [
                P.to_utc_naive(d - timedelta(days=SURVEY_LOOKBACK_DAYS), tz) for d in days
            ],
        }
    )
    for col in ("as_of_at", "pay_from", "survey_from"):
        df[col] = pd.to_datetime(df[col]).astype("datetime64[us]")
    return ibis.memtable(
        df,
        schema={
            "as_of": "date",
            "as_of_at": "timestamp",
            "pay_from": "timestamp",
            "survey_from": "timestamp",
        },
    )


def payment_issues(src: Sources, days: Sequence[date]) -> ir.Table:
    """customer_id, as_of, payment_issues_90 (only customers with at least one issue)."""
    snaps = _snapshots(days, src.timezone)
    inv = src.invoices
    inv = inv.filter(~inv.status.isin(["void", "draft"])).mutate(
        due=inv.due_at.fill_null(inv.issued_at)
    )
    j = inv.join(
        snaps,
        (inv.issued_at >= snaps.pay_from)
        & (inv.issued_at < snaps.as_of_at)
        & (inv.due + ibis.interval(days=1) < snaps.as_of_at),
    )
    unpaid = (
        j.paid_at.isnull() | (j.paid_at >= j.as_of_at) | (j.paid_at > j.due + ibis.interval(days=1))
    )
    j = j.filter(unpaid)
    return j.group_by(["customer_id", "as_of"]).aggregate(payment_issues_90=j.count().cast("int64"))


def latest_survey_scores(src: Sources, days: Sequence[date], kind: str) -> ir.Table:
    """customer_id, as_of, <kind>: the latest score of that survey kind in the lookback."""
    snaps = _snapshots(days, src.timezone)
    sv = src.surveys
    sv = sv.filter((sv.kind == kind) & sv.score.notnull())
    j = sv.join(snaps, (sv.responded_at >= snaps.survey_from) & (sv.responded_at < snaps.as_of_at))
    j = j.mutate(
        _rn=ibis.row_number().over(
            ibis.window(
                group_by=[j.customer_id, j.as_of],
                order_by=[j.responded_at.desc(), j.score.desc()],
            )
        )
    )
    return j.filter(j._rn == 0).select("customer_id", "as_of", **{kind: j.score.cast("int64")})


def health_inputs(src: Sources, *, as_of: Sequence[date], window_days: int = 28) -> pd.DataFrame:
    """One row per (customer active at as_of, as_of): features plus the extra inputs.

    Columns: every column of the features table, ``payment_issues_90`` (0 when none),
    ``nps`` and ``csat`` (null when no answer in the lookback).
    """
    days = sorted(set(as_of))
    feats = customer_features(src, as_of=days, window_days=window_days)
    out = feats
    for right, cols in (
        (payment_issues(src, days), ["payment_issues_90"]),
        (latest_survey_scores(src, days, "nps"), ["nps"]),
        (latest_survey_scores(src, days, "csat"), ["csat"]),
    ):
        jn = out.left_join(
            right, (out.customer_id == right.customer_id) & (out.as_of == right.as_of)
        )
        out = jn.select(*[out[c] for c in out.columns], *[right[c] for c in cols])
    out = out.mutate(payment_issues_90=out.payment_issues_90.fill_null(0))
    df = src.con.execute(out.order_by(["as_of", "customer_id"]))
    df["as_of"] = pd.to_datetime(df["as_of"]).dt.date
    return df.reset_index(drop=True)
