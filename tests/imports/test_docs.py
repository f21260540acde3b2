"""docs/import.md cannot drift from the schemas: every column of every kind is documented with
its type, whether it is required, its choices and its default."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from keepwell.imports.schemas import SCHEMAS

DOC = Path(__file__).resolve().parents[2] / "docs" / "import.md"


def _tables() -> dict[str, dict[str, list[str]]]:
    """kind -> column -> the cells of its row, from the '### <kind>' sections."""
    tables: dict[str, dict[str, list[str]]] = {}
    kind = None
    for line in DOC.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"^### (\w+)$", line)
        if heading:
            kind = heading.group(1)
            tables[kind] = {}
            continue
        row = re.match(r"^\| `([^`]+)` \|(.*)\|$", line)
        if kind and row:
            tables[kind][row.group(1)] = [c.strip() for c in row.group(2).split("|")]
    return tables


def _backticked(cell: str) -> list[str]:
    return re.findall(r"`([^`]*)`", cell)


@pytest.mark.parametrize("kind", list(SCHEMAS))
def test_every_column_is_documented(kind: str) -> None:
    documented = _tables().get(kind)
    assert documented is not None, f"docs/import.md has no '### {kind}' section"
    schema = SCHEMAS[kind]
    for field in schema.fields:
        assert field.name in documented, f"{kind}.{field.name} is not documented"
        type_, required, meaning, choices, default = documented[field.name]
        assert type_.startswith(field.type.value), (kind, field.name, type_)
        if field.max_length:
            assert f"max {field.max_length}" in type_, (kind, field.name, type_)
        assert required == ("yes" if field.required else "no"), (kind, field.name)
        assert meaning, (kind, field.name)
        assert _backticked(choices) == list(field.choices), (kind, field.name)
        assert _backticked(default) == ([field.default] if field.default else []), field.name
    extra = set(documented) - {f.name for f in schema.fields}
    allowed = {f"{schema.extra_prefix}<name>"} if schema.extra_prefix else set()
    assert extra <= allowed, f"documented columns that {kind} does not have: {extra - allowed}"


def test_documented_mapping_matches_the_mapping_file() -> None:
    text = DOC.read_text(encoding="utf-8")
    toml = (DOC.parent / "mappings" / "stripe-subscriptions.toml").read_text(encoding="utf-8")
    pairs = re.findall(r'^(\w+) = "([^"]+)"', toml, flags=re.MULTILINE)
    assert len(pairs) > 10
    for key, value in pairs:
        assert f'{key} = "{value}"' in text, (key, value)
