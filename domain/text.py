"""Text from outside (payloads, workflow files, REST responses) made safe for each place it is shown.

The one sanitiser of the project: pure functions, no imports of the project.
Every piece of text a delivery can set (names, messages, titles, branches,
logins, labels, URLs) is data; wherever it is shown it must stay text:

- `clean`: NUL and the other control characters (C0 but tab, LF and CR; DEL;
  C1), bidi embedding/override/isolate controls (U+202A-U+202E,
  U+2066-U+2069, which can make text read other than it is) and lone
  surrogates removed.  Records are cleaned when made (`domain.records`), the
  CSV export cleans rows stored before that, and each renderer below cleans too.
- `html_text`: text for HTML (element text or a quoted attribute value).
- `plot_text`: text for Plotly's names, legends, hover text, ticks and
  annotations, which Plotly reads as its own pseudo-HTML (`<a href>`, `<b>`,
  `<br>`, `<span style>`..., entities, `%{var}` in templates, `$...$` as TeX
  when MathJax is on): every character it interprets is an entity.
- `link_url`: the URL to link to, or None: only absolute http(s) URLs with a
  host ever become an `href`; anything else is shown as no link.
- `defuse` / `csv_text`: a CSV cell a spreadsheet shows as text, never runs
  as a formula (every prefix Excel and LibreOffice honour, full-width forms
  included).  `store/csvlines.py` says the same in SQL.
"""
import html
import re
import unicodedata
from urllib.parse import urlsplit

# C0 but \t \n \r, DEL, C1, bidi embeddings/overrides (U+202A-E) and isolates (U+2066-9), lone surrogates.
CONTROL_RANGES = (("\x00", "\x08"), ("\x0b", "\x0c"), ("\x0e", "\x1f"), ("\x7f", "\x9f"),
                  ("\u202a", "\u202e"), ("\u2066", "\u2069"), ("\ud800", "\udfff"))
_CONTROL = re.compile("[" + "".join(f"{a}-{b}" for a, b in CONTROL_RANGES) + "]")

# A cell starting with one of these is a formula (or DDE) in Excel or LibreOffice, in some locale.
FORMULA_START = "=+-@\t\r\n\uff1d\uff0b\uff0d\uff20"  # = + - @ TAB CR LF, full-width ＝ ＋ － ＠

LINK_SCHEMES = ("http", "https")
# What browsers ignore in a URL (WHATWG URL: leading/trailing C0 and space stripped, tab and newlines
# removed anywhere): stripped here too, so the URL checked is the URL followed.
_URL_EDGES = "".join(chr(c) for c in range(0x21))
_URL_DROPPED = re.compile("[\t\n\r]")
# A host name: ASCII letters, digits, '-', '_' and '.', or non-ASCII letters, marks and digits (an IDN).
_HOST_ASCII = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def clean(text: str) -> str:
    """`text` without control characters, bidi controls or lone surrogates (tab, LF and CR stay)."""
    if text.isprintable() or not _CONTROL.search(text):  # the common case: nothing to remove
        return text
    return _CONTROL.sub("", text)


def clean_value(value):
    """`clean` for a string; anything else as it is."""
    return clean(value) if isinstance(value, str) else value


def clip(text: str, limit: int | None) -> str:
    """`text` cut to `limit` characters, an ellipsis marking the cut."""
    if limit is None or len(text) <= limit:
        return text
    return text[:max(limit - 1, 0)] + "…"


def as_text(value) -> str:
    """Any value as cleaned text ("" for None and NaN)."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return clean(value if isinstance(value, str) else str(value))


def one_line(value) -> str:
    """Any value as cleaned text on one line: runs of whitespace (line breaks included) as one space."""
    return " ".join(as_text(value).split())


def html_text(value) -> str:
    """`value` as HTML text, also safe inside a double- or single-quoted attribute."""
    return html.escape(as_text(value), quote=True)


_PLOT_ENTITIES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "$": "&#36;", "%": "&#37;"})


def plot_text(value, limit: int | None = None) -> str:
    """`value` as literal text in a Plotly string: names, legend entries, hover text and templates,
    tick labels, annotations, titles.

    Plotly (svg_text_utils) turns `<b>`, `<i>`, `<a href>`, `<br>`, `<span style>`... into SVG,
    decodes `&...;` entities, substitutes `%{...}` in templates and typesets `$...$` with MathJax:
    `&`, `<`, `>`, `%` and `$` become entities, which it shows as the characters.  Line breaks
    become spaces (Plotly would too).  `limit` clips long text first (legends and hover boxes are
    small), so no entity is ever cut.
    """
    text = " ".join(as_text(value).splitlines())
    return clip(text, limit).translate(_PLOT_ENTITIES)


def link_url(value) -> str | None:
    """`value` when it is an absolute http or https URL with a host (any case, ignoring what browsers
    ignore), else None: the only URLs that may become a link.  The URL returned is the one checked
    (edges stripped, tabs and line breaks removed), still to be escaped for its context."""
    if not isinstance(value, str):
        return None
    url = _URL_DROPPED.sub("", value.strip(_URL_EDGES))
    if not url or _CONTROL.search(url) or "\\" in url or any(c.isspace() for c in url):
        return None
    try:
        parts = urlsplit(url)
        host, _port = parts.hostname, parts.port  # a port that is no number raises
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return None
    if parts.scheme.lower() not in LINK_SCHEMES or not host or not url[len(parts.scheme):].startswith("://"):
        return None
    if parts.netloc.rpartition("@")[2].startswith("["):  # an IPv6 literal
        return url if re.fullmatch(r"[0-9a-f:.]+", host) else None
    if not all(c in _HOST_ASCII or (c > "\x7f" and unicodedata.category(c)[0] in "LMN") for c in host):
        return None
    return url


def is_relative_link(value) -> bool:
    """Is `value` a link within this site (`/path`, not `//host` nor `/\\host`)?"""
    return (isinstance(value, str) and value.startswith("/") and not value.startswith(("//", "/\\"))
            and not _CONTROL.search(value) and not any(c.isspace() for c in value))


def defuse(text: str) -> str:
    """Text a spreadsheet shows as text, never evaluates: a formula prefix gets a leading apostrophe."""
    return "'" + text if text and text[0] in FORMULA_START else text


def csv_text(text: str) -> str:
    """A text cell of the CSV export: cleaned, then defused."""
    return defuse(clean(text))
