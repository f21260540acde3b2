"""Leak-free observations for churn-risk models: features as of a date, label = churn soon after.

An **observation** is a (customer, as_of) pair for a customer *active (paying)* at as_of: a
subscription in force at local midnight at the start of as_of, grace gaps bridged, trials not
counted (:func:`keepwell.metrics.activity.spells`). Definitions (``docs/risk.md``):

* **Schedule.** as_of runs over period boundaries (monthly by default: the 1st of each month in
  the reporting time zone) from the first boundary after the data starts to the data's end.
* **Features** come from :func:`keepwell.metrics.features.customer_features` only, which reads
  nothing at or after the snapshot instant, plus columns derived from that same row
  (``features_used_<W>``: how many event types were used in the last W days).
* **Label** ``churned`` = 1 when the customer's activity spell that contains as_of ends in
  (as_of, as_of + horizon_days] (a spell ends when no subscription follows within the grace
  gap: the churn of the churn metrics), else 0.
* **Censoring.** Whether a spell really ended is known ``grace_days`` after its end. An
  observation is labelled only when as_of + horizon_days + grace_days <= the data's end;
  later ones are *censored*: ``churned`` is missing (never 0) and training and evaluation drop
  them, so a churn at the end of the data is neither invented nor counted as "stayed".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from keepwell.errors import InvalidInput
from keepwell.metrics import periods as P
from keepwell.metrics.activity import FAR_FUTURE, spells
from keepwell.metrics.daily import event_types as all_event_types
from keepwell.metrics.features import customer_features
from keepwell.metrics.sources import Sources

__all__ = [
    "LABEL",
    "Observations",
    "build_observations",
    "data_end",
    "feature_columns",
    "observation_dates",
    "snapshot_features",
]

LABEL = "churned"
"""Name of the label column (1 churned within the horizon, 0 stayed, missing = censored)."""
KEYS = ("customer_id", "as_of")
"""Identifying columns of an observation (never model inputs)."""
MISSING_CATEGORY = "(none)"
"""Value of a categorical feature the customer has no value for."""

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Observations:
    """Observations with their features and labels, and the settings that made them.

    Attributes:
        frame: one row per (customer_id, as_of): the feature columns, ``churned`` (nullable
            Int8; missing = censored) and ``spell_ended_at`` (naive UTC end of the activity
            spell containing as_of; NaT while it goes on).
        features: model input columns, in order (numeric ones, then ``categorical``).
        categorical: text feature columns (customer attributes such as ``industry``).
        event_types: the event types behind the ``n<W>_<type>`` columns.
        horizon_days, grace_days, window_days: the label and feature settings.
        data_end: naive UTC instant up to which the data is known.
        timezone: the reporting time zone as_of days are counted in.
    """

    frame: pd.DataFrame
    features: list[str]
    categorical: list[str]
    event_types: list[str]
    horizon_days: int
    grace_days: int
    window_days: int
    data_end: datetime
    timezone: str

    @property
    def labelled(self) -> Observations:
        """Only the observations whose label is known (censored ones dropped)."""
        return replace(self, frame=self.frame[self.frame[LABEL].notna()].reset_index(drop=True))

    @property
    def X(self) -> pd.DataFrame:
        """``as_of`` plus the feature columns (what the models' ``fit`` and ``predict`` take)."""
        return self.frame[["as_of", *self.features]]

    @property
    def y(self) -> np.ndarray:
        """The labels as 0/1 integers (raises when censored observations are present)."""
        labels = self.frame[LABEL]
        if labels.isna().any():
            raise InvalidInput(
                f"{int(labels.isna().sum())} observations are censored",
                field=LABEL,
                expected="labelled observations only (use .labelled)",
            )
        return labels.astype("int64").to_numpy()

    @property
    def dates(self) -> list[date]:
        """The distinct observation dates, in order."""
        return sorted(self.frame["as_of"].unique())

    @property
    def gap_days(self) -> int:
        """Days after as_of until its label is known (horizon + grace): the purge between a
        training and a later test or calibration slice."""
        return self.horizon_days + self.grace_days

    def where(self, mask: np.ndarray | pd.Series) -> Observations:
        """The observations selected by a boolean mask."""
        rows = self.frame[np.asarray(mask, dtype=bool)].reset_index(drop=True)
        return replace(self, frame=rows)


def _check_positive(value: int, field: str, *, minimum: int = 1) -> None:
    if not isinstance(value, int) or value < minimum:
        raise InvalidInput(f"{field} must be an integer >= {minimum}, got {value!r}", field=field)


def data_end(src: Sources) -> datetime:
    """The naive UTC instant up to which the data is known.

    = the latest recorded moment among events, subscription starts and ends, invoice issues,
    survey answers and ticket openings, capped at now (a subscription end scheduled in the
    future is not data yet). Raises :class:`InvalidInput` when there is no data at all.
    """
    now = datetime.now(UTC).replace(tzinfo=None)
    cap = ibis.literal(now, type="timestamp")
    parts: list[ir.Table] = []
    for table, column in (
        ("events", "occurred_at"),
        ("subscriptions", "started_at"),
        ("subscriptions", "ended_at"),
        ("invoices", "issued_at"),
        ("surveys", "responded_at"),
        ("tickets", "opened_at"),
    ):
        t = src.tables[table]
        col = t[column].cast("timestamp")
        parts.append(t.filter(col <= cap).aggregate(last=col.max()))
    union = parts[0]
    for part in parts[1:]:
        union = union.union(part)
    value = src.con.execute(union.aggregate(last=union["last"].max()))["last"].iloc[0]
    if value is None or pd.isna(value):
        raise InvalidInput(
            "there is no data to observe: no events, subscriptions or invoices",
            hint="import customers, subscriptions and events first (`keepwell import ...`)",
        )
    return pd.Timestamp(value).to_pydatetime().replace(tzinfo=None)


def _first_start(src: Sources) -> datetime | None:
    s = src.subscriptions
    value = src.con.execute(s.aggregate(first=s.started_at.cast("timestamp").min()))["first"]
    first = value.iloc[0]
    return None if first is None or pd.isna(first) else pd.Timestamp(first).to_pydatetime()


def _local_date(at: datetime, tz: str) -> date:
    return at.replace(tzinfo=UTC).astimezone(ZoneInfo(tz)).date()


def observation_dates(
    src: Sources,
    *,
    period: P.Period | str = P.Period.month,
    start: date | None = None,
    end: date | None = None,
    until: datetime | None = None,
) -> list[date]:
    """The observation schedule: period boundaries (local days) in [start, end].

    Defaults: ``start`` = the first boundary after the first subscription starts, ``end`` =
    the last boundary whose snapshot instant is at or before ``until`` (default
    :func:`data_end`). Monthly boundaries are the 1st of each month.
    """
    period = P.Period(period)
    tz = src.timezone
    if start is None:
        first = _first_start(src)
        if first is None:
            raise InvalidInput(
                "there are no subscriptions, so no customer is ever active",
                field="subscriptions",
                hint="import subscriptions first",
            )
        start = P.floor(_local_date(first, tz), period) + P.STEP[period]
    if end is None:
        end = _local_date(until or data_end(src), tz)
    day = P.floor(start, period)
    if day < start:
        day += P.STEP[period]
    days = []
    while day <= end:
        if until is None or P.to_utc_naive(day, tz) <= until:
            days.append(day)
        day += P.STEP[period]
    if not days:
        raise InvalidInput(
            f"no observation date between {start} and {end}",
            field="start",
            expected=f"a range holding at least one {period.value} boundary",
        )
    return days


def feature_columns(
    frame: pd.DataFrame, *, window_days: int, categorical: Sequence[str] = ()
) -> list[str]:
    """Model inputs of a feature table: every numeric column but the keys, then ``categorical``."""
    numeric = [
        c
        for c in frame.columns
        if c not in KEYS and c not in categorical and c not in (LABEL, "spell_ended_at")
    ]
    return numeric + list(categorical)


def _derive(frame: pd.DataFrame, *, window_days: int, categorical: Sequence[str]) -> pd.DataFrame:
    """Columns computed from the same feature row: breadth of use; categorical text tidied."""
    prefix = f"n{window_days}_"
    types = [c for c in frame.columns if c.startswith(prefix)]
    counts = frame[types].to_numpy() if types else np.zeros((len(frame), 0))
    frame[f"features_used_{window_days}"] = (counts > 0).sum(axis=1).astype("int64")
    for col in categorical:
        frame[col] = frame[col].astype("object").where(frame[col].notna(), MISSING_CATEGORY)
        frame[col] = frame[col].astype(str)
    return frame


def _labels(
    src: Sources, days: list[date], *, horizon_days: int, grace_days: int, known_until: datetime
) -> ir.Table:
    """customer_id, as_of, churned (1/0/null), spell_ended_at for every active (customer, day)."""
    tz = src.timezone
    snaps = ibis.memtable(
        pd.DataFrame(
            {
                "as_of": days,
                "as_of_at": pd.to_datetime([P.to_utc_naive(d, tz) for d in days]).astype(
                    "datetime64[us]"
                ),
                "horizon_at": pd.to_datetime(
                    [P.to_utc_naive(d, tz) + timedelta(days=horizon_days) for d in days]
                ).astype("datetime64[us]"),
            }
        ),
        schema={"as_of": "date", "as_of_at": "timestamp", "horizon_at": "timestamp"},
    )
    sp = spells(src, grace_days=grace_days)
    j = sp.join(snaps, (sp.started_at <= snaps.as_of_at) & (snaps.as_of_at < sp.ended_at))
    known = j.horizon_at + ibis.interval(days=grace_days) <= ibis.literal(
        known_until, type="timestamp"
    )
    far = ibis.literal(FAR_FUTURE, type="timestamp")
    return j.select(
        l_customer_id=j.customer_id,
        l_as_of=j.as_of,
        churned=ibis.ifelse(known, ibis.ifelse(j.ended_at <= j.horizon_at, 1, 0), ibis.null())
        .cast("int8")
        .name(LABEL),
        spell_ended_at=ibis.ifelse(j.ended_at < far, j.ended_at, ibis.null("timestamp")),
    )


def _query(
    src: Sources,
    days: list[date],
    *,
    horizon_days: int | None,
    grace_days: int,
    window_days: int,
    categorical: Sequence[str],
    event_types: Sequence[str],
    known_until: datetime | None,
) -> pd.DataFrame:
    feats = customer_features(
        src,
        as_of=days,
        window_days=window_days,
        grace_days=grace_days,
        event_types=list(event_types),
        by=list(categorical),
    )
    if horizon_days is None or known_until is None:
        return src.con.execute(feats)
    lab = _labels(
        src, days, horizon_days=horizon_days, grace_days=grace_days, known_until=known_until
    )
    j = feats.join(
        lab, (feats.customer_id == lab.l_customer_id) & (feats.as_of == lab.l_as_of), how="left"
    )
    out = j.select(*[feats[c] for c in feats.columns], lab[LABEL], lab.spell_ended_at)
    return src.con.execute(out.order_by(["as_of", "customer_id"]))


def _tidy(
    frame: pd.DataFrame, *, window_days: int, categorical: Sequence[str], labelled: bool
) -> pd.DataFrame:
    frame = _derive(frame, window_days=window_days, categorical=categorical)
    frame["as_of"] = pd.to_datetime(frame["as_of"]).dt.date
    if labelled:
        frame[LABEL] = frame[LABEL].astype("Int8")
        frame["spell_ended_at"] = pd.to_datetime(frame["spell_ended_at"])
    features = feature_columns(frame, window_days=window_days, categorical=categorical)
    for col in features:
        if col not in categorical:
            frame[col] = frame[col].astype("float64")
    extra = [LABEL, "spell_ended_at"] if labelled else []
    return frame[[*KEYS, *features, *extra]].reset_index(drop=True)


def build_observations(
    src: Sources,
    *,
    as_of: Sequence[date] | None = None,
    period: P.Period | str = P.Period.month,
    start: date | None = None,
    end: date | None = None,
    horizon_days: int = 30,
    grace_days: int = 7,
    window_days: int = 28,
    categorical: Sequence[str] = ("industry",),
    known_until: datetime | None = None,
    dates_per_query: int = 6,
    progress: Progress | None = None,
) -> Observations:
    """Features and churn labels for every active customer at each observation date.

    Args:
        src: the metric sources.
        as_of: explicit observation dates; default :func:`observation_dates` with ``period``,
            ``start`` and ``end``.
        horizon_days: the label window: churned in (as_of, as_of + horizon_days].
        grace_days: gap between subscriptions that is not churn (as in the churn metrics).
        window_days: W of the trailing feature windows.
        categorical: customer fields used as categorical features (missing -> ``"(none)"``).
        known_until: naive UTC end of the data (default :func:`data_end`).
        dates_per_query: observation dates computed per query (bounds memory on big data).
        progress: called as ``progress("features", done_dates, total_dates)``.
    """
    _check_positive(horizon_days, "horizon_days")
    _check_positive(grace_days, "grace_days", minimum=0)
    _check_positive(window_days, "window_days")
    _check_positive(dates_per_query, "dates_per_query")
    known_until = known_until or data_end(src)
    days = (
        sorted(set(as_of))
        if as_of is not None
        else observation_dates(src, period=period, start=start, end=end, until=known_until)
    )
    if not days:
        raise InvalidInput("no observation dates given", field="as_of", expected="one or more")
    types = all_event_types(src)
    chunks = [days[i : i + dates_per_query] for i in range(0, len(days), dates_per_query)]
    frames = []
    done = 0
    for chunk in chunks:
        frames.append(
            _query(
                src,
                chunk,
                horizon_days=horizon_days,
                grace_days=grace_days,
                window_days=window_days,
                categorical=categorical,
                event_types=types,
                known_until=known_until,
            )
        )
        done += len(chunk)
        if progress:
            progress("features", done, len(days))
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    frame = _tidy(frame, window_days=window_days, categorical=categorical, labelled=True)
    return Observations(
        frame=frame,
        features=feature_columns(frame, window_days=window_days, categorical=categorical),
        categorical=list(categorical),
        event_types=types,
        horizon_days=horizon_days,
        grace_days=grace_days,
        window_days=window_days,
        data_end=known_until,
        timezone=src.timezone,
    )


def snapshot_features(
    src: Sources,
    *,
    as_of: date,
    grace_days: int = 7,
    window_days: int = 28,
    categorical: Sequence[str] = ("industry",),
    event_types: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Features (no labels) of every customer active at ``as_of``, for scoring.

    Pass the ``event_types`` a model was trained on so the ``n<W>_<type>`` columns match.
    Columns: customer_id, as_of, the feature columns.
    """
    _check_positive(window_days, "window_days")
    types = list(event_types) if event_types is not None else all_event_types(src)
    frame = _query(
        src,
        [as_of],
        horizon_days=None,
        grace_days=grace_days,
        window_days=window_days,
        categorical=categorical,
        event_types=types,
        known_until=None,
    )
    return _tidy(frame, window_days=window_days, categorical=categorical, labelled=False)
