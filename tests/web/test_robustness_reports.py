"""GET /v1/reports/{metric} with fuzzed parameters: always a 422 problem naming the
parameter, never a 500 (huge or deeply nested text, values of the wrong kind or size)."""

from __future__ import annotations

import pytest

from tests.web.conftest import Live

HUGE = {
    "parens": "(" * 5000,
    "minus": "-" * 20_000,
    "nots": "not " * 3000,
    "digits": "1" * 20_000,  # past int()'s 4,300-digit limit; float() makes it inf
}


def _problem(answer, field: str) -> dict:
    assert answer.status_code == 422, answer.text[:300]
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert body["errors"][0]["field"] == field, body
    return body


@pytest.mark.parametrize("kind", sorted(HUGE))
def test_huge_values_are_refused_up_front(live: Live, kind: str) -> None:
    text = HUGE[kind]
    with live.client("viewer") as api:
        for metric, key, value in [
            ("churn", "param", f"grace_days={text}"),
            ("cohorts", "param", f"as_of={text}"),
            ("mrr", "segment", f"industry={text}"),
            ("mrr", "by", text),
        ]:
            body = _problem(api.get(f"/v1/reports/{metric}", params={key: value}), key)
            assert "characters long" in body["detail"]


@pytest.mark.parametrize(
    ("metric", "param", "words"),
    [
        ("cohorts", "as_of=yesterday", "'as_of'"),  # was AttributeError: str has no .year
        ("cohorts", "as_of=((((", "'as_of'"),
        ("retention_curve", "as_of=12", "'as_of'"),  # was AttributeError on a float
        ("churn", "grace_days=" + "9" * 150, "'grace_days'"),  # was decimal.InvalidOperation
        ("churn", "grace_days=1e400", "'grace_days'"),
        ("active_customers", "mau_days=inf", "'mau_days'"),  # was OverflowError
        ("usage_frequency", "lookback_days=nan", "'lookback_days'"),
        ("ltv", "margin=inf", "'margin'"),
        ("ltv", "margin=abc", "'margin'"),
        ("churn", "grace_days=1.5", "'grace_days'"),
        ("event_retention", "cohort=sometimes", "'cohort'"),
        ("churn", "grace_days=99999999999", "'grace_days' is out of range"),
        ("cost_of_churn", "profit_per_customer_minor=-10000000000", "out of range"),
    ],
)
def test_values_of_the_wrong_kind_are_a_422_naming_the_option(
    live: Live, metric: str, param: str, words: str
) -> None:
    with live.client("viewer") as api:
        body = _problem(api.get(f"/v1/reports/{metric}", params={"param": param}), "param")
        assert words in body["detail"]


def test_good_options_still_work(live: Live) -> None:
    with live.client("viewer") as api:
        for metric, params in [
            ("cohorts", ["as_of=2026-03-01", "max_age=3"]),
            ("churn", ["grace_days=0", "activity=subscriptions"]),
            ("ltv", ["margin=0.7"]),
            ("event_retention", ["start_event=123", "cohort=first_time"]),
        ]:
            answer = api.get(f"/v1/reports/{metric}", params={"param": params})
            assert answer.status_code == 200, (metric, answer.text[:300])
            assert answer.json()["metric"] == metric
