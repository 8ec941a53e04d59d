"""Sortable tables as one escaped HTML string: what a section shows when an AG Grid costs more than it gives.

At 1M runs Triage drew three grids, and each forced Chromium to recompute the style of the whole page while the
other sections arrived (~0.3 s a load, BENCHMARKS.md "Triage, third pass").  A table of a few hundred rows is
cheaper as markup: one `RawHtml`, drawn in one piece.  Clicking a header sorts it in the browser
(`assets/sortable.min.js`, the `sortable-tablesort` package: one document-level click listener, so it works on
tables drawn later), by each cell's `data-sort` when it has one; `assets/sorttable.js` keeps a table's sort when
a live update redraws it and sorts from the keyboard.

Every text goes through `dashapp.tables`' escaping; cells built here are markup already.
"""
from dataclasses import dataclass

from dashapp.rawhtml import RawHtml
from dashapp.tables import _attrs, _esc, _page_link

ASCENDING, DESCENDING = "ascending", "descending"


@dataclass(frozen=True)
class Header:
    text: str
    title: str | None = None  # the header's hover, e.g. how a number is computed
    numeric: bool = False  # right-aligned, as its cells are
    sortable: bool = True


def cell(text=None, *, markup: str | None = None, sort=None, title=None, numeric: bool = False,
         css: str | None = None, style: str | None = None) -> str:
    """A `<td>`: `text` escaped, or `markup` as given (built here, escaped); `sort` is the value the column
    sorts by when it differs from the text (a number for times and rates)."""
    classes = " ".join(c for c in ("text-end" if numeric else None, css) if c) or None
    body = markup if markup is not None else _esc("—" if text is None or text == "" else text)
    return (f"<td{_attrs(class_=classes, title=title, style=style, data_sort=sort)}>"
            f"{body}</td>")


def link(text, href, **attrs) -> str:
    """A link to a page of this site, followed in place (`dashapp.tables._page_link`)."""
    return _page_link(text, href, **attrs)


def table(table_id: str, headers: list[Header], rows: list[list[str]], *, sort: tuple[int, str] | None = None,
          max_height: str | None = None, css: str = "") -> RawHtml:
    """`rows` (lists of `cell` strings) under `headers`, as a sortable table in a scroll box of `max_height`
    (the header row stays in view).  `sort` says which column the rows come sorted by, and which way, so its
    header shows it and a first click turns it around."""
    head = []
    for index, h in enumerate(headers):
        classes = " ".join(c for c in ("text-end" if h.numeric else None, None if h.sortable else "no-sort") if c)
        attrs = _attrs(class_=classes or None, title=h.title, scope="col",
                       aria_sort=sort[1] if sort and sort[0] == index else None,
                       tabindex="0" if h.sortable else None)
        head.append(f"<th{attrs}>{_esc(h.text)}</th>")
    body = "".join(f"<tr>{''.join(r)}</tr>" for r in rows)
    classes = f"table table-sm table-hover mb-0 sortable n-last {css}".strip()
    markup = (f"<table{_attrs(id=table_id, class_=classes)}>"
              f"<thead><tr>{''.join(head)}</tr></thead><tbody>{body}</tbody></table>")
    return RawHtml(html=markup, className="sort-table-box",
                   style={"maxHeight": max_height} if max_height else None)
