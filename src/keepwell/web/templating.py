"""Jinja2 templates of the web app (autoescaped). Pages extend ``base.html``.

In a template, ``{{ csrf_input(request) }}`` renders the hidden CSRF field every POST form
needs, and ``{{ csrf_token(request) }}`` the bare token (for ``X-CSRF-Token`` in scripts).
"""

from __future__ import annotations

from pathlib import Path

from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape

from keepwell.web.auth import CSRF_FIELD, csrf_token

TEMPLATES_DIR = Path(__file__).parent / "templates"


def csrf_input(request) -> Markup:
    """The hidden form field carrying the session's CSRF token."""
    return Markup(
        f'<input type="hidden" name="{CSRF_FIELD}" value="{escape(csrf_token(request))}">'
    )


def make_templates(*extra_dirs: Path) -> Jinja2Templates:
    """Templates from ``extra_dirs`` first, then keepwell's own (so pages can add their own)."""
    templates = Jinja2Templates(directory=[*extra_dirs, TEMPLATES_DIR])
    templates.env.globals["csrf_token"] = csrf_token
    templates.env.globals["csrf_input"] = csrf_input
    return templates


templates = make_templates()
