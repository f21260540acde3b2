"""Render a :class:`~keepwell.reports.full.FullReport` as one standalone HTML file.

Charts are embedded as PNG data URIs and the styles are inline, so the file opens anywhere
without a network (no CDN, no external assets). Text is escaped by Jinja2's autoescaping.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from jinja2 import Environment, PackageLoader, select_autoescape

from keepwell import __version__
from keepwell.reports import display
from keepwell.reports.full import FullReport


def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("keepwell.reports", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
    )


def render(report: FullReport) -> str:
    """The report as an HTML document (a string)."""
    images = {
        s.key: [
            (stem, "data:image/png;base64," + base64.b64encode(data).decode("ascii"))
            for stem, data in s.charts
        ]
        for s in report.sections
    }
    tables = {}
    for s in report.sections:
        tables[s.key] = []
        for caption, metric, df in s.tables:
            headers, rows = display.rows_for_people(df, metric=metric)
            tables[s.key].append((caption, headers, rows))
    template = _environment().get_template("report.html.j2")
    return template.render(
        report=report,
        section_images=images,
        section_tables=tables,
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        version=__version__,
    )
