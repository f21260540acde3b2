"""Link tracking for HTML bodies: ``<a href>`` -> signed click URL, plus an open pixel.

Uses the standard library's HTML parser (tokenises like a browser's tokenizer, no regular
expressions on HTML) and copies everything it does not change byte for byte.
"""

from __future__ import annotations

from html import escape
from html.parser import HTMLParser

from keepwell.config import Settings
from keepwell.email.models import EmailMessage
from keepwell.email.tokens import click_url, open_pixel_url
from keepwell.errors import InvalidInput

__all__ = ["track_links"]


class _Rewriter(HTMLParser):
    def __init__(self, rewrite, pixel: str | None) -> None:
        super().__init__(convert_charrefs=False)
        self.out: list[str] = []
        self.rewrite = rewrite
        self.pixel = pixel

    def _tag(self, tag: str, attrs: list[tuple[str, str | None]], closing: bool) -> None:
        raw = self.get_starttag_text() or ""
        if tag != "a" or not any(name == "href" for name, _ in attrs):
            self.out.append(raw)
            return
        changed = False
        parts = []
        for name, value in attrs:
            if name == "href" and value is not None:
                new = self.rewrite(value)
                changed = changed or new != value
                value = new
            parts.append(name if value is None else f'{name}="{escape(value, quote=True)}"')
        if not changed:
            self.out.append(raw)
            return
        self.out.append(f"<{tag} {' '.join(parts)}{' /' if closing else ''}>")

    def handle_starttag(self, tag, attrs):
        self._tag(tag, attrs, False)

    def handle_startendtag(self, tag, attrs):
        self._tag(tag, attrs, True)

    def handle_endtag(self, tag):
        if tag == "body" and self.pixel is not None:
            self.out.append(self.pixel)
            self.pixel = None
        self.out.append(f"</{tag}>")

    def handle_data(self, data):
        self.out.append(data)

    def handle_entityref(self, name):
        self.out.append(f"&{name};")

    def handle_charref(self, name):
        self.out.append(f"&#{name};")

    def handle_comment(self, data):
        self.out.append(f"<!--{data}-->")

    def handle_decl(self, decl):
        self.out.append(f"<!{decl}>")

    def handle_pi(self, data):
        self.out.append(f"<?{data}>")

    def unknown_decl(self, data):
        self.out.append(f"<![{data}]>")


def track_links(html: str, *, settings: Settings, message: EmailMessage, pixel: bool = True) -> str:
    """``html`` with each absolute http(s) ``<a href>`` replaced by a signed click URL and
    (``pixel``) a 1x1 open-tracking image before ``</body>`` (or at the end).

    ``mailto:``, relative and fragment links are left alone. Call it after
    :func:`~keepwell.email.service.queue_message` (the tokens carry the message id) and store
    the result in ``message.html``.
    """

    def rewrite(href: str) -> str:
        target = href.strip()
        if not target.lower().startswith(("http://", "https://")):
            return href
        try:
            return click_url(settings, message, target)
        except InvalidInput:
            return href

    img = None
    if pixel:
        src = escape(open_pixel_url(settings, message), quote=True)
        img = f'<img src="{src}" width="1" height="1" alt="" style="display:none">'
    parser = _Rewriter(rewrite, img)
    parser.feed(html)
    parser.close()
    if parser.pixel is not None:
        parser.out.append(parser.pixel)
    return "".join(parser.out)
