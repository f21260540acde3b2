"""Public API of keepwell.campaigns: exported members exist; docstring examples run."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "keepwell.campaigns.analytics",
    "keepwell.campaigns.assignment",
    "keepwell.campaigns.context",
    "keepwell.campaigns.fields",
    "keepwell.campaigns.plaintext",
    "keepwell.campaigns.retention",
    "keepwell.campaigns.schedule",
    "keepwell.campaigns.service",
    "keepwell.campaigns.templates",
]
DOCTESTED = [
    "keepwell.campaigns.assignment",
    "keepwell.campaigns.plaintext",
    "keepwell.campaigns.retention",
    "keepwell.campaigns.schedule",
    "keepwell.campaigns.templates",
]


@pytest.mark.parametrize("name", MODULES)
def test_exported_members_exist(name) -> None:
    module = importlib.import_module(name)
    assert module.__all__
    for member in module.__all__:
        assert getattr(module, member) is not None


def test_brief_names() -> None:
    from keepwell.campaigns import service, templates

    for name in ("compile_template", "render_for_customers", "render_preview"):
        assert callable(getattr(templates, name))
    for name in ("create_campaign", "launch", "results", "send_template_email"):
        assert callable(getattr(service, name))


@pytest.mark.parametrize("name", DOCTESTED)
def test_docstring_examples(name) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0
