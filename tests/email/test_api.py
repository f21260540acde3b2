"""Public API of keepwell.email: exports exist, the documented signatures hold, doctests run."""

from __future__ import annotations

import doctest
import importlib
import inspect

import pytest

MODULES = [
    "keepwell.email.service",
    "keepwell.email.sender",
    "keepwell.email.tokens",
    "keepwell.email.links",
    "keepwell.email.compose",
    "keepwell.email.addresses",
    "keepwell.email.journal",
]
DOCTESTED = ["keepwell.email.addresses", "keepwell.email.sender"]


@pytest.mark.parametrize("name", MODULES)
def test_exported_members_exist(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__all__
    for member in module.__all__:
        assert getattr(module, member) is not None


@pytest.mark.parametrize("name", DOCTESTED)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0


def test_signatures_other_domains_call() -> None:
    from keepwell.email import sender, service, tokens

    queue = inspect.signature(service.queue_message).parameters
    assert list(queue) == [
        "db_session", "customer_id", "to", "subject", "html", "text", "kind", "campaign_id",
        "variant", "dedup_key", "not_before", "headers",
    ]  # fmt: skip
    assert all(p.kind is p.KEYWORD_ONLY for p in queue.values())
    for func in (service.unsubscribe, service.record_open, service.resolve_click):
        assert {"db_session", "token"} <= set(inspect.signature(func).parameters)
    assert list(inspect.signature(sender.send_due).parameters)[:3] == ["settings", "limit", "now"]
    assert list(inspect.signature(tokens.click_url).parameters) == ["settings", "message", "url"]
