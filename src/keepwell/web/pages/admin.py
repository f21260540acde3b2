"""Settings (admins only): health weights, alert rules, and the SMTP settings (read-only).

Health weights are saved as a health configuration file, ``<home>/health.toml``; score with
it by ``keepwell health score --config <home>/health.toml``.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from keepwell.config import Settings
from keepwell.errors import InvalidInput, KeepwellError
from keepwell.health.config import COMPONENTS, HealthConfig, load_config
from keepwell.web.auth import DbSession
from keepwell.web.pages.common import AdminUser, flash, redirect, render

router = APIRouter()

HEALTH_FILE = "health.toml"


def health_path(settings: Settings) -> Path:
    """Where the settings page keeps the health configuration."""
    return settings.home.resolve() / HEALTH_FILE


def current_health(settings: Settings) -> HealthConfig:
    """The saved configuration, or the defaults."""
    path = health_path(settings)
    return load_config(path) if path.exists() else HealthConfig()


def _toml(config: HealthConfig, original: dict) -> str:
    """``original`` (the file's other settings, kept) with new weights and bands, as TOML."""
    lines = [
        "# keepwell health configuration (written by the settings page)",
        f"name = {json.dumps(config.name)}",
        f"window_days = {config.window_days}",
        f"ignore_events = {json.dumps(list(config.ignore_events))}",
        "",
        "[weights]",
        *(f"{c} = {config.weights.get(c, 0.0)!r}" for c in COMPONENTS),
        "",
        "[bands]",
        f"red_below = {config.bands.red_below!r}",
        f"green_from = {config.bands.green_from!r}",
    ]
    for name, curve in original.get("curves", {}).items():
        lines += ["", f"[curves.{name}]", f"points = {curve['points']!r}"]
    return "\n".join(lines) + "\n"


def _settings_page(request: Request, who, db_session, *, health: HealthConfig, status_code=200):
    from keepwell.automation import service as automation

    s: Settings = request.app.state.settings
    smtp = {
        "host": s.smtp_host,
        "port": s.smtp_port,
        "username": s.smtp_username or "(none)",
        "password": "set" if s.smtp_password else "(none)",
        "TLS": s.smtp_tls,
        "timeout": f"{s.smtp_timeout:g} s",
        "from": s.mail_from,
        "send rate": f"{s.send_rate:g}/s" if s.send_rate else "unlimited",
        "concurrency": s.send_concurrency,
        "base URL": s.base_url,
    }
    return render(
        request,
        who,
        "pages/settings.html",
        status_code=status_code,
        health=health,
        components=COMPONENTS,
        health_file=health_path(s),
        rules=automation.list_rules(db_session=db_session),
        smtp=smtp,
    )


@router.get("/settings", response_class=HTMLResponse)
def settings_page(request: Request, who: AdminUser, db_session: DbSession) -> HTMLResponse:
    return _settings_page(
        request, who, db_session, health=current_health(request.app.state.settings)
    )


def _number(form, key: str) -> float:
    raw = form.get(key, "")
    try:
        return float(raw)
    except (TypeError, ValueError):
        raise InvalidInput(f"{raw!r} is not a number", field=key) from None


@router.post("/settings/health")
async def save_health(request: Request, who: AdminUser) -> Response:
    """Validate and save new weights and band thresholds (other settings are kept)."""
    settings: Settings = request.app.state.settings
    form = await request.form()
    path = health_path(settings)
    try:
        old = current_health(settings)
        original = tomllib.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        weights = {c: _number(form, f"weight_{c}") for c in COMPONENTS}
        bands = {k: _number(form, k) for k in ("red_below", "green_from")}
        config = HealthConfig(
            **{
                **original,
                "name": old.name,
                "weights": weights,
                "bands": bands,
            }
        )
        text = _toml(config, original)
        HealthConfig.from_mapping(tomllib.loads(text))  # what we write reads back
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except KeepwellError as exc:
        flash(request, exc.message, error=True)
        return redirect("/settings")
    flash(request, f"Health weights saved to {path}")
    return redirect("/settings")


@router.post("/settings/rules/{rule_id}/{action}")
def toggle_rule(
    request: Request,
    rule_id: int,
    action: Literal["enable", "disable"],
    who: AdminUser,
    db_session: DbSession,
) -> Response:
    from keepwell.automation import service as automation

    try:
        rule = automation.get_rule_or_raise(db_session=db_session, name_or_id=rule_id)
        automation.set_enabled(db_session=db_session, rule=rule, enabled=action == "enable")
    except KeepwellError as exc:
        flash(request, exc.message, error=True)
    else:
        flash(request, f"Rule {rule.name!r} {action}d")
    return redirect("/settings")
