"""`/v1/reports` (every metric of the catalogue as JSON), `/v1/risk` and `/v1/health`.

Reports take the same parameters as ``keepwell report <metric>``: ``from``/``to`` (the 12
complete months before this one by default), ``period``, ``segment`` (``field=value[,value]``,
repeatable), ``by`` (repeatable) and ``param`` (``name=value``, repeatable).
"""

from __future__ import annotations

import math
import typing
from collections.abc import Sequence
from datetime import date
from enum import StrEnum
from functools import cache
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, TypeAdapter, ValidationError

from keepwell.errors import InvalidInput
from keepwell.health import service as health_service
from keepwell.metrics.registry import TITLES
from keepwell.risk import service as risk_service
from keepwell.web.auth import AppSettings, DbSession, Reader
from keepwell.web.customer_edits import get_customer_or_raise

router = APIRouter()

MetricName = StrEnum("MetricName", {name: name for name in TITLES})


class MetricInfo(BaseModel):
    name: str
    title: str
    params: list[str]


class ReportResult(BaseModel):
    metric: str
    title: str
    start: date
    end: date
    period: str
    rows: list[dict[str, Any]]


class WorkItemRead(BaseModel):
    customer_id: int
    external_id: str
    name: str
    owner: str | None
    probability: float
    band: str
    value_minor: int | None
    revenue_at_risk_minor: int | None
    currency: str | None
    reasons: list[str]
    as_of: Any
    model_version: str


class HealthRead(BaseModel):
    customer_id: str
    health: float | None
    band: str | None
    as_of: Any


class HealthPage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[HealthRead]


class HealthPoint(BaseModel):
    as_of: Any
    scored_at: Any
    score: float
    band: str
    components: dict[str, Any]
    config: str


MAX_PARAM_LENGTH = 200
"""Longest ``param`` item (``name=value``) a report accepts."""
MAX_SEGMENT_LENGTH = 1000
"""Longest ``segment`` item (``field=value[,value]``)."""
MAX_BY_LENGTH = 100
"""Longest ``by`` item (a field name)."""
MAX_WHOLE = 10**9
"""Largest whole-number option (days, months, periods, counts; minor units of money)."""


def _check_lengths(name: str, items: Sequence[str], limit: int) -> None:
    """Refuse huge items up front: fuzzed input (``'(' * 5000``, ``'-' * 100000``, digit
    strings past ``int``'s limit) must be a 422 naming the parameter, never reach a parser."""
    for item in items:
        if len(item) > limit:
            raise InvalidInput(
                f"a {name} value is {len(item):,} characters long (at most {limit:,})",
                field=name,
            )


@cache
def _param_types(metric: str) -> dict[str, TypeAdapter]:
    """Validators for the metric's options, from its builder's annotations."""
    from keepwell.reports import service as report_service

    spec = report_service.catalogue()[metric]
    hints = typing.get_type_hints(spec.builder)
    return {name: TypeAdapter(hints[name]) for name in spec.params if name in hints}


def _typed_params(metric: str, items: Sequence[str]) -> dict[str, Any]:
    """``name=value`` items as keyword arguments of the types the metric declares (a date for
    ``as_of``, a whole number for ``grace_days``, a finite number for ``margin``, text for an
    event name even when it looks like a number); a value of the wrong kind is an
    :class:`InvalidInput` naming the option. Names the metric does not declare keep the report
    service's conversion (which then lists the accepted names)."""
    from keepwell.reports import service as report_service

    params = report_service.parse_params(items)  # checks the name=value form
    raw = {k.strip(): v.strip() for k, _, v in (item.partition("=") for item in items)}
    types = _param_types(metric)
    typed: dict[str, Any] = {}
    for name, value in params.items():
        adapter = types.get(name)
        if adapter is None:
            typed[name] = value
            continue
        try:
            typed[name] = adapter.validate_python(raw[name])
        except ValidationError as exc:
            try:  # a one-item list (event_types=login) given as a plain value
                typed[name] = adapter.validate_python([raw[name]])
            except ValidationError:
                reason = exc.errors()[0]["msg"]
                raise InvalidInput(
                    f"param {name!r} of metric {metric!r}: {reason} (got {raw[name][:40]!r})",
                    field="param",
                ) from None
        got = typed[name]
        if isinstance(got, float) and not math.isfinite(got):
            raise InvalidInput(f"param {name!r} must be a finite number", field="param")
        if isinstance(got, int) and not isinstance(got, bool) and abs(got) > MAX_WHOLE:
            raise InvalidInput(
                f"param {name!r} is out of range (at most {MAX_WHOLE:,} either way)",
                field="param",
            )
    return typed


def _date_range(from_: date | None, to: date | None) -> tuple[date, date]:
    end = to or date.today().replace(day=1)
    start = from_ or date(end.year - 1, end.month, 1)
    if start >= end:
        raise InvalidInput(f"from ({start}) must be before to ({end})", field="from")
    return start, end


@router.get("/reports", response_model=list[MetricInfo], tags=["reports"], summary="Metrics")
def list_reports(_: Reader) -> list[MetricInfo]:
    """Every metric ``/v1/reports/{metric}`` computes, with the parameters it accepts."""
    from keepwell.reports import service as report_service

    return [
        MetricInfo(name=name, title=spec.title, params=sorted(spec.params))
        for name, spec in report_service.catalogue().items()
    ]


@router.get(
    "/reports/{metric}", response_model=ReportResult, tags=["reports"], summary="Run a metric"
)
def run_report(
    request: Request,
    metric: MetricName,
    settings: AppSettings,
    _: Reader,
    from_: Annotated[date | None, Query(alias="from", description="First day.")] = None,
    to: Annotated[date | None, Query(description="End day, exclusive.")] = None,
    period: Literal["day", "week", "month", "quarter"] = "month",
    segment: Annotated[
        list[str] | None, Query(max_length=50, description="field=value[,value] filters.")
    ] = None,
    by: Annotated[list[str] | None, Query(max_length=10, description="Breakdowns.")] = None,
    param: Annotated[
        list[str] | None, Query(max_length=20, description="Metric options name=value.")
    ] = None,
) -> ReportResult:
    from keepwell.metrics.sources import open_default
    from keepwell.reports import service as report_service

    start, end = _date_range(from_, to)
    _check_lengths("segment", segment or [], MAX_SEGMENT_LENGTH)
    _check_lengths("by", by or [], MAX_BY_LENGTH)
    _check_lengths("param", param or [], MAX_PARAM_LENGTH)
    filters = report_service.parse_filters(segment or [])
    params = _typed_params(metric.value, param or [])
    src = open_default(settings, engine=request.app.state.engine)
    try:
        df = report_service.run_metric(
            src,
            metric.value,
            start=start,
            end=end,
            period=period,
            filters=filters,
            by=by or [],
            **params,
        )
    except (TypeError, ValueError, ArithmeticError) as exc:  # an option of the wrong kind/size
        raise InvalidInput(
            f"metric {metric.value!r} cannot use these parameters: {exc}", field="param"
        ) from None
    finally:
        src.con.disconnect()
    rows = report_service.to_records(df)
    return ReportResult(
        metric=metric.value,
        title=TITLES[metric.value],
        start=start,
        end=end,
        period=period,
        rows=[{k: _finite(v) for k, v in row.items()} for row in rows],
    )


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@router.get(
    "/risk/worklist", response_model=list[WorkItemRead], tags=["risk"], summary="Risk work list"
)
def risk_worklist(
    db_session: DbSession,
    _: Reader,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
    owner: Annotated[str | None, Query(max_length=320, description="Owner's e-mail.")] = None,
) -> list[WorkItemRead]:
    """The latest scoring run's customers, by revenue at risk then churn probability."""
    items = risk_service.worklist(db_session=db_session, limit=limit, owner=owner)
    return [WorkItemRead(**vars(i)) for i in items]


@router.get("/health/scores", response_model=HealthPage, tags=["health"], summary="Health")
def health_scores(
    db_session: DbSession,
    _: Reader,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> HealthPage:
    """Each customer's newest health score, by external id."""
    df = health_service.latest_scores(db_session=db_session)
    df = df.sort_values("customer_id")
    page = df.iloc[offset : offset + limit]
    items = [
        HealthRead(
            customer_id=str(r.customer_id),
            health=None if r.health is None or math.isnan(r.health) else float(r.health),
            band=r.band,
            as_of=r.as_of,
        )
        for r in page.itertuples()
    ]
    return HealthPage(total=len(df), limit=limit, offset=offset, items=items)


@router.get(
    "/customers/{external_id}/health",
    response_model=list[HealthPoint],
    tags=["health"],
    summary="A customer's health history",
)
def customer_health(
    external_id: str,
    db_session: DbSession,
    _: Reader,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[HealthPoint]:
    customer = get_customer_or_raise(db_session=db_session, external_id=external_id)
    _, rows = health_service.history(db_session=db_session, ref=f"#{customer.id}", limit=limit)
    return [
        HealthPoint(
            as_of=r.as_of,
            scored_at=r.scored_at,
            score=r.score,
            band=r.band,
            components=r.components or {},
            config=r.config,
        )
        for r in rows
    ]
