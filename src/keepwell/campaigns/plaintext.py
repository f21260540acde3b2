"""Plain text from HTML (the text part of an e-mail when a template gives none).

Works on the *template source*, so the Jinja tags survive and the text template is compiled
like any other: block elements become line breaks, list items get "- ", links become
"text (url)", images their alt text; ``<head>``, ``<style>`` and ``<script>`` are dropped.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

__all__ = ["html_to_text"]

_BLOCKS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "div",
        "dl",
        "dt",
        "dd",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "tbody",
        "thead",
        "tfoot",
        "tr",
        "ul",
    ]
)
_SKIP = frozenset({"head", "script", "style", "title"})
_SPACES = re.compile(r"[ \t\r\f\v]*\n[ \t\r\f\v]*")


class _TextBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0
        self.links: list[tuple[str | None, int]] = []

    def _newline(self, count: int = 1) -> None:
        self.parts.append("\n" * count)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self.skipping += 1
        elif tag == "br":
            self._newline()
        elif tag == "li":
            self._newline()
            self.parts.append("- ")
        elif tag in ("td", "th"):
            self.parts.append(" ")
        elif tag in _BLOCKS:
            self._newline(2)
        elif tag == "a":
            self.links.append((dict(attrs).get("href"), len(self.parts)))
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt:
                self.parts.append(alt)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in _BLOCKS:
            self._newline(2)
        elif tag == "a" and self.links:
            href, start = self.links.pop()
            label = "".join(self.parts[start:]).strip()
            if href and not href.startswith("#") and href != label:
                self.parts.append(f" ({href})" if label else href)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> str:
    """Readable plain text of an HTML document (or HTML template source).

    >>> html_to_text('<p>Hi <b>{{ customer.name }}</b>,</p><p><a href="https://x.test">Read</a></p>')
    'Hi {{ customer.name }},\\n\\nRead (https://x.test)'
    """
    builder = _TextBuilder()
    builder.feed(html)
    builder.close()
    text = _SPACES.sub("\n", "".join(builder.parts))
    text = re.sub(r"\n{3,}", "\n\n", text)
    text = re.sub(r"[ \t]{2,}", " ", text)
    return text.strip()
