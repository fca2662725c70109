"""HTTP security headers for every response of the hub's web app.

Content-Security-Policy, and why each source is allowed (checked with headless Chromium,
tests/test_browser.py fails on any CSP violation in the console):

* ``script-src 'self' 'sha256-…'``: Dash 4 loads its renderer, React and the component
  bundles (Plotly.js included) from ``/_dash-component-suites`` on the same origin. The one
  inline script it writes is ``var renderer = new DashRenderer();`` in the index page; it is
  allowed by its hash (``Dash.csp_hashes()``), computed at start-up, so no
  ``'unsafe-inline'``. The ``_dash-config`` block is JSON (``type="application/json"``),
  which browsers do not execute, so it needs no hash. No ``'unsafe-eval'``: neither Dash's
  renderer nor Plotly.js (the SVG traces the hub draws; WebGL traces were not tested)
  needs ``eval``/``new Function``; the browser test reports any violation as a failure.
* ``style-src 'self' 'unsafe-inline'``: measured with ``style-src 'self'`` (Dash 4.4.1,
  Plotly.js 4.1.1): the dcc bundle (Graph's wrapper, which React renders with inline
  ``style``), the Dash renderer and Plotly.js (``<style>`` elements it creates at run time
  and ``style="…"`` attributes on its SVG) were blocked 56 times, and the charts lost
  their colour bars and axis titles.
  Their content changes with every chart, so hashes cannot list it, and nonces do not
  cover style attributes. Styles cannot run script and the page renders no user-supplied
  HTML, so this is the accepted residual risk; scripts stay hash-only.
* ``img-src 'self' data:``: Plotly.js uses data: URIs for some SVG patterns and the
  favicon is ours. ``connect-src 'self'``: the renderer fetches the layout and Plotly.js
  the world map (``/assets/world_110m.json``) from this origin only.
* ``object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'``: no
  plugins, no ``<base>`` hijack, forms post here only, no framing (click-jacking).
"""

from __future__ import annotations

from collections.abc import Iterable

from flask import Response

from hub.settings import Settings

HSTS = "max-age=31536000; includeSubDomains"


def content_security_policy(script_hashes: Iterable[str]) -> str:
    """The policy for every response, allowing exactly the inline scripts whose hashes are given."""
    directives = {
        "default-src": ["'self'"],
        "script-src": ["'self'", *script_hashes],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives.items())


def security_headers(settings: Settings, csp: str) -> dict[str, str]:
    """Headers set on every response; HSTS only in production (served behind TLS)."""
    headers = {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "strict-origin-when-cross-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Resource-Policy": "same-origin",
    }
    if settings.env == "production":
        headers["Strict-Transport-Security"] = HSTS
    return headers


def apply_headers(response: Response, headers: dict[str, str]) -> Response:
    for name, value in headers.items():
        response.headers[name] = value
    return response
