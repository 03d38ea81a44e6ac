"""HTML pieces shared by the report's sections: escaping, sections, notes, cells, embedded figures.

Every text that comes from the store is escaped here, once, as it is written.
"""

from __future__ import annotations

import base64
import html
import io

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 110


def escape(text: object) -> str:
    return html.escape(str(text), quote=True)


def section(title: str, anchor: str, *parts: str) -> str:
    return f'<section id="{escape(anchor)}">\n<h2>{escape(title)}</h2>\n' + "\n".join(parts) + "\n</section>"


def note(text: str) -> str:
    return f'<p class="note">{escape(text)}</p>'


def summary_table(rows: list[tuple[str, str]], config_error: str | None, omitted: str) -> str:
    """A campaign's bookkeeping as a two-column table, and a note when its stored configuration no
    longer validates (``omitted`` says what the page leaves out because of that)."""
    body = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    parts = [f'<table class="summary">{body}</table>']
    if config_error:
        parts.append(note(f"the stored configuration does not validate any more ({config_error}); {omitted}"))
    return "\n".join(parts)


def figure_html(fig: Figure, alt: str, *, tight: bool = True) -> str:
    """The figure as an embedded PNG <img>; the figure is released afterwards. ``tight=False`` for a
    figure laid out with fixed margins (``layout.fixed_margins``): one draw instead of two."""
    FigureCanvasAgg(fig)  # attach the Agg canvas explicitly: no backend selection, no pyplot
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight" if tight else None, metadata={"Software": None})
    fig.clear()
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<figure><img alt="{escape(alt)}" src="data:image/png;base64,{encoded}"></figure>'


def td(text: str, *, num: bool = False, title: str | None = None) -> str:
    attrs = ' class="num"' if num else ""
    if title:
        attrs += f' title="{escape(title)}"'
    return f"<td{attrs}>{escape(text)}</td>"


def bullets(items: list[str], css: str = "") -> str:
    attrs = f' class="{escape(css)}"' if css else ""
    return f"<ul{attrs}>" + "".join(f"<li>{escape(i)}</li>" for i in items) + "</ul>" if items else ""
