"""The HTML building blocks of the reports: the analysis report (:mod:`transport.report`)
and the study report (:mod:`transport.study_report`) are built of these.

Every value from the data goes through :func:`escape` (a :func:`table` cell, a
:func:`section` title, a :func:`note`), unless it is :class:`Html`: markup a report built
itself, inserted as is. :func:`figure` embeds a drawing as a base64 PNG, and
:func:`page` puts the sections in one self-contained page (inline CSS, no scripts,
fonts or external images).
"""

from __future__ import annotations

import base64
import html
import io
import math
import warnings
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from transport.exceptions import TransportWarning
from transport.manifest import json_safe as manifest_json_safe

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "DASH",
    "Html",
    "escape",
    "figure",
    "grid",
    "is_missing",
    "json_safe",
    "note",
    "num",
    "page",
    "panels",
    "section",
    "setting",
    "table",
]

#: What a cell shows for a value that is missing or undefined.
DASH = "—"
_DPI = 96

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
margin:2em auto;max-width:80em;padding:0 1em;color:#222;line-height:1.4}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0;font-size:.88em}
th,td{border:1px solid #ddd;padding:.25em .5em;vertical-align:top}
th{background:#f3f3f3;text-align:left}td.num,th.num{text-align:right;white-space:nowrap}
figure{margin:1em 0}img{max-width:100%;height:auto}figcaption,.note{color:#555;font-size:.88em}
nav ul{columns:2}.verdict{font-weight:600;padding:0 .3em;border-radius:3px}
.verdict-equivalent{background:#dff0d8}.verdict-not-equivalent{background:#f2dede}
.verdict-inconclusive{background:#fcf8e3}.withheld,.missing{color:#8a6d3b}
"""


class Html(str):
    """Markup the report built itself: inserted as is, never escaped again."""

    __slots__ = ()


def escape(x: Any) -> Html:
    """Escape a value for HTML text or an attribute."""
    if isinstance(x, Html):
        return x
    return Html(html.escape(str(x), quote=True))


def is_missing(v: Any) -> bool:
    """``None`` or a float NaN."""
    return v is None or (isinstance(v, float) and math.isnan(v))


def num(v: Any, digits: int) -> str:
    """A number to ``digits`` decimals with thousands separators and a minus sign (none
    on a value that rounds to zero); a dash when missing, ``∞`` when infinite."""
    if is_missing(v):
        return DASH
    if isinstance(v, float) and math.isinf(v):
        return "∞" if v > 0 else "−∞"
    text = f"{float(v):,.{digits}f}"
    if text.startswith("-"):  # a minus sign, and none on a value that rounds to zero
        text = "−" + text[1:] if text.strip("-0.,") else text[1:]
    return text


def setting(v: Any) -> str:
    """A setting's value as text: yes or no, ``%g`` floats, mappings and lists joined."""
    if v is None:
        return DASH
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, Mapping):
        return "; ".join(f"{k}: {setting(x)}" for k, x in v.items())
    if isinstance(v, list | tuple):
        return ", ".join(setting(x) for x in v)
    return str(v)


def json_safe(x: Any) -> Any:
    """``x`` with string keys, lists for tuples and arrays, and Python scalars for numpy's
    (:func:`transport.manifest.json_safe`, non-finite values kept for display)."""
    return manifest_json_safe(x, nonfinite_as_none=False)


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    cls: str = "",
    numeric: Collection[int] = (),
) -> Html:
    """A table; cells are escaped unless they are :class:`Html`. Columns from
    ``numeric`` (indices) are right-aligned."""
    head = "".join(
        f"<th{' class=num' if i in numeric else ''}>{escape(h)}</th>" for i, h in enumerate(headers)
    )
    body = "\n".join(
        "<tr>"
        + "".join(
            f"<td{' class=num' if i in numeric else ''}>{escape(c)}</td>" for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    klass = f' class="{escape(cls)}"' if cls else ""
    return Html(
        f"<table{klass}>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"
    )


def section(sid: str, title: str, body: Sequence[str], level: int = 2) -> Html:
    """A ``<section>`` with id ``sid``, a heading of ``level`` and the ``body`` parts."""
    inner = "\n".join(body)
    return Html(
        f'<section id="{escape(sid)}">\n<h{level}>{escape(title)}</h{level}>\n{inner}\n</section>'
    )


def note(text: str) -> Html:
    """A paragraph of small print."""
    return Html(f'<p class="note">{escape(text)}</p>')


def figure(
    draw: Callable[[Figure], None], size: tuple[float, float], alt: str, caption: str = ""
) -> Html:
    """Draw on a new figure (not registered with pyplot, so nothing is left open), embed
    it as a PNG data URI. A figure that fails is replaced by a note and a warning."""
    import matplotlib
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    try:
        # names from the data are drawn as they are: "$" starts no mathtext
        with matplotlib.rc_context({"text.parse_math": False}):
            draw(fig)
            buf = io.BytesIO()
            fig.savefig(
                buf, format="png", dpi=_DPI, bbox_inches="tight", metadata={"Software": None}
            )
    except Exception as exc:  # a figure must not cost the whole report
        warnings.warn(
            f"report figure {alt!r} could not be drawn: {exc}", TransportWarning, stacklevel=3
        )
        return Html(f'<p class="missing">Figure not drawn ({escape(alt)}): {escape(exc)}</p>')
    finally:
        fig.clear()
    uri = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    cap = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
    return Html(f'<figure><img src="{uri}" alt="{escape(alt)}">{cap}</figure>')


def grid(n: int, cols: int) -> tuple[int, int]:
    """Rows and columns of a grid of ``n`` panels, at most ``cols`` wide."""
    c = max(1, min(cols, n))
    return math.ceil(n / c), c


def panels(fig: Figure, n: int, ncol: int) -> list[Axes]:
    """``n`` axes on a grid of ``ncol`` columns; the unused cells are hidden."""
    nrow, ncol = grid(n, ncol)
    axes = list(fig.subplots(nrow, ncol, squeeze=False).ravel())
    for ax in axes[n:]:
        ax.set_visible(False)
    return axes[:n]


def page(
    title: str, toc: Sequence[tuple[str, str]], parts: Sequence[str], *, generator: str
) -> str:
    """The HTML page around the sections: head with the inline CSS, title, contents.

    ``toc`` is the table of contents as (section id, label); ``generator`` names what
    made the page (``"transport <version>"``) in its ``generator`` meta tag.
    """
    nav = (
        "<nav><ul>"
        + "".join(f'<li><a href="#{escape(a)}">{escape(b)}</a></li>' for a, b in toc)
        + "</ul></nav>"
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta name="generator" content="{escape(generator)}">\n'
        f"<title>{escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"<header><h1>{escape(title)}</h1></header>\n{nav}\n<main>\n"
        + "\n".join(parts)
        + "\n</main>\n</body>\n</html>\n"
    )
