"""Security headers on every response of the Flask server (pages, assets, Dash callbacks, API, CSV).

One `after_request` hook, so a route added later gets them too (the webhook, served in front of
Flask, sets its own `nosniff`: `ingest/webhook.py`).

- `Content-Security-Policy`: scripts only from this server, plus the page's inline scripts named by
  their SHA-256 hashes: Dash's own (`app.csp_hashes()`: the clientside callbacks) and ours (the
  theme script and the deferred renderer of `dashapp/__init__.py`).  No `'unsafe-inline'` and no
  `'unsafe-eval'` for scripts: Plotly's SVG charts, AG Grid (its `{"function": ...}` strings are
  parsed, not evaluated) and Dash run without them (tests/test_headers.py watches every page in
  Chromium for violations).  Styles need `'unsafe-inline'`: Dash's renderer and core components,
  React, AG Grid (its theme) and Plotly inject `<style>` elements and style attributes (about 50
  refused on each page under `style-src 'self'`: the dropdowns fall apart, for one); an injected
  style cannot run script.  `connect-src 'self'` covers the page's own `ws://`/`wss://` `/ws`
  (CSP Level 3; Chromium since 71, Safari since 16, Firefox): nothing taken from the request's
  `Host` header goes into the policy.  `frame-ancestors 'none'` (with `X-Frame-Options: DENY` for
  older browsers): no page may be framed.
- `X-Content-Type-Options: nosniff`: a JSON answer or the CSV export is never sniffed into HTML.
- `Referrer-Policy: same-origin`: the links out (runs and commits on GitHub) send no `Referer`, so
  neither this monitor's host name nor the repositories and people in its URLs leave with them.

A header a route set itself is left as it is.
"""
import base64
import hashlib

import dash

REFERRER_POLICY = "same-origin"


def script_hash(body: str) -> str:
    """The CSP source naming an inline script by its text (what is between `<script>` and `</script>`)."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode() + "'"


def content_security_policy(script_hashes) -> str:
    directives = (
        ("default-src", ["'self'"]),
        ("script-src", ["'self'", *script_hashes]),
        ("style-src", ["'self'", "'unsafe-inline'"]),
        # Bootstrap's switches and selects draw data: SVGs; Plotly's "Download plot" draws its blob: SVG.
        ("img-src", ["'self'", "data:", "blob:"]),
        ("connect-src", ["'self'"]),  # the API, Dash's callbacks and the same-origin WebSocket
        ("font-src", ["'self'"]),
        ("object-src", ["'none'"]),
        ("base-uri", ["'self'"]),
        ("form-action", ["'self'"]),
        ("frame-ancestors", ["'none'"]),
    )
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives)


def page_script_hashes(app: dash.Dash, inline_scripts=()) -> list[str]:
    """Hashes of every inline script the app's pages run: Dash's, and `inline_scripts` (ours)."""
    hashes = app.csp_hashes()  # the clientside callbacks, and Dash's default renderer...
    unused = script_hash(app.renderer)  # ...which `_Dash.interpolate_index` replaces by ours
    ours = [script_hash(body) for body in inline_scripts]
    return list(dict.fromkeys([h for h in hashes if h != unused] + ours))


def init_headers(app: dash.Dash, inline_scripts=()) -> None:
    """Send the security headers on every response of `app.server`.

    The policy is built at the first response, when every clientside callback is registered.
    """
    policy = []

    @app.server.after_request
    def _security_headers(response):
        if not policy:
            policy.append(content_security_policy(page_script_hashes(app, inline_scripts)))
        headers = response.headers
        headers.setdefault("Content-Security-Policy", policy[0])
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", REFERRER_POLICY)
        return response
