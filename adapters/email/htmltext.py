"""An HTML mail body as plain text, in time linear in its length whatever a sender puts in it.

html2text does the conversion, but it and the standard library's `html.parser` under it are
quadratic on some input that no mail client writes: tags that never close (`<a <a <a`),
comments that never end, stray `<` and `&`, runs of blank lines, lists nested thousands deep.
`tidy` rewrites those first, in one pass, into what a browser would show anyway; well-formed
HTML goes through unchanged."""

from __future__ import annotations

import re

import html2text

MAX_DEPTH = 8
"""Lists and quotes nested deeper than this are read as if they were not nested further."""

_TAG = re.compile(r"<[A-Za-z/!?][^<>]*>")
_NESTING = re.compile(r"<(/?)(ol|ul|dl|blockquote)\b", re.IGNORECASE)
_BARE_AMP = re.compile(r"&(?![A-Za-z][A-Za-z0-9]{0,31};|#[0-9]{1,7};|#[xX][0-9A-Fa-f]{1,6};)")
_SPACES = re.compile(r"\s{2,}")
# A `<` or `&` that is text stands in as a private-use character while html2text runs: written
# as `&lt;` it would cost a parser event of its own (tens of microseconds) each.
_LT, _AMP = "\ue000", "\ue001"


def html_to_text(html: str) -> str:
    conv = html2text.HTML2Text()
    conv.body_width = 0
    conv.ignore_images = True
    conv.ignore_emphasis = True
    conv.ignore_links = True
    conv.ignore_tables = True
    return conv.handle(tidy(html)).replace(_LT, "<").replace(_AMP, "&")


def tidy(html: str) -> str:
    """Comments removed (an unclosed one hides the rest, as in a browser); `<` that starts no
    complete tag, and `&` that starts no reference, marked as text; nesting past `MAX_DEPTH`
    flattened; a run of blank lines made one."""
    html = _without_comments(html.replace(_LT, "").replace(_AMP, ""))
    out: list[str] = []
    depth = dropped = 0
    pos = 0
    for m in _TAG.finditer(html):
        out.append(html[pos : m.start()].replace("<", _LT))
        pos = m.end()
        tag = m.group(0)
        if tag.count('"') % 2 or tag.count("'") % 2:
            # An open quote makes the parser look for its end through the rest of the text.
            out.append(tag.replace("<", _LT))
            continue
        nest = _NESTING.match(tag)
        if nest is not None:
            closing = bool(nest.group(1))
            if closing and dropped:
                dropped -= 1
                continue
            if closing:
                depth = max(0, depth - 1)
            elif depth >= MAX_DEPTH:
                dropped += 1
                continue
            else:
                depth += 1
        out.append(tag)
    out.append(html[pos:].replace("<", _LT))
    text = _BARE_AMP.sub(_AMP, "".join(out))
    return _SPACES.sub(_one_blank_line, text)


def _without_comments(html: str) -> str:
    parts: list[str] = []
    pos = 0
    while (start := html.find("<!--", pos)) >= 0:
        parts.append(html[pos:start])
        end = html.find("-->", start + 4)
        if end < 0:
            return "".join(parts)
        pos = end + 3
    parts.append(html[pos:])
    return "".join(parts)


def _one_blank_line(m: re.Match[str]) -> str:
    # Whitespace between tags is one space to a browser; html2text's escaping, though, reads a
    # run of blank lines once for each line in it.
    run = m.group(0)
    return "\n\n" if run.count("\n") > 1 else run
