"""The generated files honour the import contract (keepwell.imports.schemas) and basic sense."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from keepwell.demo.writers import EVENT_SCHEMA
from keepwell.imports.parse import country_codes, is_currency, is_time_zone
from keepwell.imports.schemas import SCHEMAS, FieldType

from .conftest import END, Demo

ISO_Z = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"
END_TS = pd.Timestamp(END, tz="UTC")


def _kinds(demo: Demo) -> list[str]:
    return [k for k in demo.manifest.files if k != "events"]


@pytest.fixture(params=["saas_demo", "shop_demo"])
def demo(request: pytest.FixtureRequest) -> Demo:
    return request.getfixturevalue(request.param)


def test_columns_are_those_of_the_import_schemas(demo: Demo) -> None:
    for kind in _kinds(demo):
        schema = SCHEMAS[kind]
        columns = list(demo[kind].columns)
        known = {f.name for f in schema.fields}
        known |= {f"{f.name}_minor" for f in schema.fields if f.type is FieldType.money}
        unknown = [
            c
            for c in columns
            if c not in known and not (schema.extra_prefix and c.startswith(schema.extra_prefix))
        ]
        assert not unknown, (kind, unknown)
        for f in schema.fields:
            if f.required:
                assert f.name in columns or f"{f.name}_minor" in columns, (kind, f.name)
        money = [c for c in columns if c.endswith("_minor")]
        for column in money:
            values = demo[kind][column]
            assert values.dtype.kind == "i" and (values >= 0).all(), (kind, column)


def test_values_have_the_declared_types(demo: Demo) -> None:
    for kind in _kinds(demo):
        frame = demo[kind]
        for f in SCHEMAS[kind].fields:
            if f.name not in frame.columns:
                continue
            values = frame[f.name].dropna()
            if f.required:
                assert frame[f.name].notna().all(), (kind, f.name)
            if f.type is FieldType.timestamp:
                assert values.str.match(ISO_Z).all(), (kind, f.name)
                stamps = pd.to_datetime(values, utc=True)
                assert (stamps < END_TS + pd.Timedelta(days=60)).all(), (kind, f.name)
            elif f.type is FieldType.choice:
                assert set(values) <= set(f.choices), (kind, f.name, set(values) - set(f.choices))
            elif f.type is FieldType.email:
                assert values.str.match(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$").all(), (kind, f.name)
            elif f.type is FieldType.country:
                assert set(values) <= country_codes(), (kind, f.name)
            elif f.type is FieldType.time_zone:
                assert all(is_time_zone(v) for v in set(values)), (kind, f.name)
            elif f.type is FieldType.currency:
                assert all(is_currency(v) for v in set(values)), (kind, f.name)
            elif f.type is FieldType.integer:
                assert (values == values.round()).all(), (kind, f.name)  # NaN makes it float
            if f.max_length:
                assert values.astype(str).str.len().max() <= f.max_length, (kind, f.name)
        assert frame.external_id.is_unique if "external_id" in frame else True, kind


def test_every_customer_id_exists_in_customers(demo: Demo) -> None:
    ids = set(demo["customers"].external_id)
    for kind in [*_kinds(demo)[1:], "events", "truth"]:
        assert set(demo[kind].customer_id) <= ids, kind
    assert set(demo["truth"].customer_id) == ids


def test_events_parquet_schema_and_content(demo: Demo) -> None:
    for part in demo.manifest.event_parts:
        schema = pq.read_schema(part)
        assert schema.remove_metadata().equals(EVENT_SCHEMA), part
        assert pq.ParquetFile(part).metadata.row_group(0).column(0).compression == "ZSTD"
    events = demo["events"]
    signup = pd.to_datetime(demo["customers"].set_index("external_id").signup_at, utc=True)
    at = events.occurred_at
    assert (at < END_TS).all()
    assert (at >= signup.loc[events.customer_id].to_numpy()).all()
    properties = events.properties.dropna().unique()
    assert len(properties) > 0
    assert all(isinstance(json.loads(p), dict) for p in properties)
    assert (events.value.dropna() >= 0).all()


def test_subscription_rows_never_overlap_and_end_after_they_start(saas_demo: Demo) -> None:
    subs = saas_demo["subscriptions"].copy()
    subs["start"] = pd.to_datetime(subs.started_at, utc=True)
    subs["end"] = pd.to_datetime(subs.ended_at, utc=True).fillna(
        pd.Timestamp.max.tz_localize("UTC")
    )
    assert (subs.end >= subs.start).all()
    subs = subs.sort_values(["customer_id", "start"])
    previous_end = subs.groupby("customer_id").end.shift()
    assert (previous_end.isna() | (previous_end <= subs.start)).all()
    open_rows = subs[subs.ended_at.isna()]
    assert open_rows.customer_id.is_unique  # at most one running row per customer
    assert set(open_rows.status) <= {"active", "trialing", "past_due"}


def test_invoices_belong_to_a_row_of_their_customer_and_fall_inside_it(saas_demo: Demo) -> None:
    subs = saas_demo["subscriptions"].set_index("external_id")
    invoices = saas_demo["invoices"]
    assert invoices.subscription_id.isin(subs.index).all()
    row = subs.loc[invoices.subscription_id]
    assert (row.customer_id.to_numpy() == invoices.customer_id.to_numpy()).all()
    issued = pd.to_datetime(invoices.issued_at, utc=True).to_numpy()
    assert (issued >= pd.to_datetime(row.started_at, utc=True).to_numpy()).all()
    ended = pd.to_datetime(row.ended_at, utc=True)
    assert (ended.isna().to_numpy() | (issued < ended.to_numpy())).all()
    assert (row.status != "trialing").all()
    paid = invoices.paid_at.notna()
    assert (invoices.status[paid] == "paid").all()
    assert (invoices.amount_minor > 0).all()


def test_survey_scores_fit_their_kind(demo: Demo) -> None:
    surveys = demo["surveys"]
    nps = surveys[surveys.kind == "nps"].score
    csat = surveys[surveys.kind == "csat"].score
    assert len(nps) and nps.between(0, 10).all()
    assert csat.between(1, 5).all()
    assert surveys[surveys.kind == "open"].score.isna().all()


def test_tickets_close_after_they_open(saas_demo: Demo) -> None:
    tickets = saas_demo["tickets"]
    closed = tickets.closed_at.notna()
    opened_at = pd.to_datetime(tickets.opened_at, utc=True)
    closed_at = pd.to_datetime(tickets.closed_at, utc=True)
    assert (closed_at[closed] >= opened_at[closed]).all()
    assert (tickets.status[closed] == "closed").all()
    assert (tickets.status[~closed] != "closed").all()


def test_truth_names_a_cause_for_every_churn(saas_demo: Demo) -> None:
    truth = saas_demo["truth"]
    churned = truth[truth.churned]
    assert churned.churn_cause.notna().all() and churned.churned_at.notna().all()
    assert truth[~truth.churned].churn_cause.isna().all()
    assert set(churned.churn_cause) <= {
        "usage_decline",
        "payment_failure",
        "detractor",
        "low_adoption",
        "crisis",
        "support",
        "random",
        "trial_expired",
    }
    status = saas_demo["customers"].set_index("external_id").status
    assert (status.loc[truth.customer_id].to_numpy() == truth.status_at_end.to_numpy()).all()


def test_customer_look_and_feel(saas_demo: Demo) -> None:
    customers = saas_demo["customers"]
    assert customers.name.is_unique  # unique company names at this size
    assert customers.industry.nunique() == 10
    assert customers.owner_email.dropna().str.endswith("@keepwell-demo.test").all()
    assert customers.owner_email.nunique() == 8
    assert {"enterprise", "beta"} <= set(";".join(customers.tags.dropna()).split(";"))
    assert {"attr_seats", "attr_acquisition_channel"} <= set(customers.columns)
    signup = pd.to_datetime(customers.signup_at, utc=True)
    assert signup.is_monotonic_increasing  # ids follow sign-up order
    by_half = (signup >= signup.min() + (END_TS - signup.min()) / 2).mean()
    assert by_half > 0.6  # growth: most sign-ups in the second half of the window
    zones = customers.groupby("country").time_zone.unique()
    assert set(zones["DE"]) == {"Europe/Berlin"}
    assert {"America/New_York", "America/Los_Angeles"} <= set(zones["US"])


def test_events_follow_office_hours_in_the_customers_zone(saas_demo: Demo) -> None:
    events = saas_demo["events"]
    zone = saas_demo["customers"].set_index("external_id").time_zone
    sample = events.sample(20_000, random_state=1)
    hours, weekdays = [], []
    for tz, group in sample.groupby(zone.loc[sample.customer_id].to_numpy()):
        local = group.occurred_at.dt.tz_convert(tz)
        hours.append(local.dt.hour.to_numpy())
        weekdays.append(local.dt.weekday.to_numpy())
    hour, weekday = np.concatenate(hours), np.concatenate(weekdays)
    assert ((hour >= 8) & (hour < 18)).mean() > 0.7
    assert (weekday >= 5).mean() < 0.15


def test_event_types_and_users(saas_demo: Demo) -> None:
    events = saas_demo["events"]
    assert 8 <= events.event.nunique() <= 12
    system = events.event.isin(["integration_sync", "api_call"])
    assert events.user_id[system].isna().all()
    users = events[~system].dropna(subset=["user_id"])
    prefix = users.user_id.str.split("-u").str[0]
    assert (prefix == users.customer_id).all()
    per_customer = users.groupby("customer_id").user_id.nunique()
    assert per_customer.max() > 5  # larger accounts have many users
