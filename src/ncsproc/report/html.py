"""HTML building blocks of the report: escaping by default, tables, the page shell.

Every piece of text is escaped (:func:`html.escape`, quotes included) unless it is a
:class:`Markup`, which only the builders of this package make. Text from input files (exam
ids, study and site names, evidence strings, error messages) therefore always reaches the page
as text: a stimulus annotation ``<script>`` shows as ``&lt;script&gt;``.

Pages carry a Content-Security-Policy that allows nothing but their own inline style and
script (by SHA-256 hash) and ``data:`` images: no network, and an injected script would not run
even if something escaped the escaping.
"""

from __future__ import annotations

import base64
import hashlib
import html
import math
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from importlib import resources

from ..vocab import EVIDENCE_MEANINGS, EVIDENCE_STATUSES

__all__ = ["Markup", "esc", "attrs", "table", "page", "tag_badge", "asset"]


class Markup(str):
    """A string of trusted HTML (made by this package); everything else gets escaped."""

    __slots__ = ()


def esc(value) -> Markup:
    """Escape a value for HTML text or a quoted attribute (``None``/NaN -> empty)."""
    if isinstance(value, Markup):
        return value
    if value is None:
        return Markup("")
    if isinstance(value, float) and math.isnan(value):
        return Markup("")
    return Markup(html.escape(str(value), quote=True))


def attrs(**kw) -> Markup:
    """Attributes ``name="value"`` (escaped, always double-quoted); ``None``/False are left
    out, True gives a bare attribute. ``class_`` -> ``class``, ``data_x`` -> ``data-x``."""
    out = []
    for name, value in kw.items():
        if value is None or value is False:
            continue
        name = name.rstrip("_").replace("_", "-")
        if value is True:
            out.append(f" {name}")
        else:
            out.append(f' {name}="{esc(value)}"')
    return Markup("".join(out))


def tag_badge(status: str | None, title: str | None = None) -> Markup:
    """A status tag of the limits and rules (C confirmed, S secondary, U unconfirmed,
    P proposal) as a small badge ``[U]``; empty for no tag."""
    if not status:
        return Markup("")
    meaning = EVIDENCE_MEANINGS.get(status, "status tag")
    cls = f"tag tag-{status}" if status in EVIDENCE_STATUSES else "tag"
    return Markup(f"<span{attrs(class_=cls, title=title or meaning)}>{esc(status)}</span>")


def table(
    columns: Sequence,
    rows: Iterable[Sequence],
    *,
    sortable: bool = False,
    cls: str | None = None,
    row_attrs: Iterable[Mapping] | None = None,
    id_: str | None = None,
) -> Markup:
    """An HTML table; a cell is text (escaped), a :class:`Markup`, or a ``(content, attrs)``
    pair whose attrs (a dict for :func:`attrs`, e.g. ``class_="num abn"``, ``data_sort``)
    go on the ``<td>``."""
    classes = " ".join(c for c in (cls, "sortable" if sortable else None) if c) or None
    head = "".join(
        f"<th{attrs(tabindex='0' if sortable else None, scope='col')}>{esc(c)}</th>"
        for c in columns
    )
    body = []
    ras = iter(row_attrs) if row_attrs is not None else None
    for row in rows:
        ra = next(ras) if ras is not None else {}
        cells = []
        for cell in row:
            if isinstance(cell, tuple):
                content, cattrs = cell
                cells.append(f"<td{attrs(**cattrs)}>{esc(content)}</td>")
            else:
                cells.append(f"<td>{esc(cell)}</td>")
        body.append(f"<tr{attrs(**ra)}>{''.join(cells)}</tr>")
    return Markup(
        f'<div class="wrap"><table{attrs(class_=classes, id=id_)}><thead><tr>{head}</tr>'
        f"</thead><tbody>{''.join(body)}</tbody></table></div>"
    )


@cache
def asset(name: str) -> str:
    """The text of a bundled asset (``report.css``, ``report.js``)."""
    return (resources.files("ncsproc.report") / "assets" / name).read_text(encoding="utf-8")


def _sha256_b64(text: str) -> str:
    return base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


def page(
    title: str,
    body: Markup,
    *,
    css: str | None = None,
    js: str | None = None,
    generator: str = "ncsproc",
) -> str:
    """A complete, self-contained HTML5 page (inline style and script, strict CSP).

    Parameters
    ----------
    title : str
        Page title (escaped).
    body : Markup
        Trusted body HTML.
    css, js : str, optional
        Style sheet and script (default: the bundled ``report.css`` and ``report.js``).
    generator : str
        Content of the ``generator`` meta element (escaped).
    """
    css = asset("report.css") if css is None else css
    js = asset("report.js") if js is None else js
    if "</style" in css.lower() or "</script" in js.lower():
        raise ValueError("inline style or script must not contain a closing tag")
    csp = (
        "default-src 'none'; img-src data:; "
        f"style-src 'sha256-{_sha256_b64(css)}'; script-src 'sha256-{_sha256_b64(js)}'; "
        "base-uri 'none'; form-action 'none'"
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{esc(csp)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="generator" content="{esc(generator)}">'
        '<meta name="robots" content="noindex">'
        f"<title>{esc(title)}</title><style>{css}</style></head>\n"
        f"<body>\n{body}\n<script>{js}</script>\n</body></html>\n"
    )
