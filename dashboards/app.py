"""The hub's web app: a Dash app on a Flask server, built once per process by :func:`create_app`.

``hub serve`` hands ``create_app(...).server`` to waitress, so nothing here runs Dash's
development server or debugger. The app keeps no state of its own: the page layout is
rebuilt from the database on every page load, through the engine passed in.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dash
import flask
from dash import ALL, Input, Output, State, dcc, html, no_update
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session
from werkzeug.exceptions import HTTPException, NotFound

from dashboards import routing, security
from dashboards.pages import member, overview
from hub import member_views, tabular
from hub.auth import Account, signed_in_account
from hub.catalogue import load_catalogue
from hub.db import session_scope
from hub.discrepancies import DiscrepancyCache
from hub.errors import HubError
from hub.published import ReleaseCache
from hub.reconciliation import load_flows
from hub.releases import read_release_table
from hub.settings import Settings
from hub.targets import load_targets
from ingest import api as ingest_api
from ingest import web as ingest_web
from reports.service import OwnReports, PublicReports

ASSETS = Path(__file__).resolve().parent / "assets"
TITLE = "Global transparency hub against online child sexual exploitation"
DESCRIPTION = (
    "Published figures on the fight against online child sexual exploitation and abuse, with their "
    "sources, and the alliance of organisations that reports them."
)
SOURCES_PATH = routing.SOURCES_PATH
DOWNLOADABLE = {"indicators", "observations", "targets", "reconciliation", "coverage", "peers", "revisions"}
MAX_REQUEST_BYTES = 1024 * 1024  # callbacks post small JSON; refuse anything large early

logger = logging.getLogger(__name__)

# Dash's default index, plus a language, a no-script message and no inline script but
# the renderer line (whose hash the Content-Security-Policy allows).
INDEX = """<!DOCTYPE html>
<html lang="en">
  <head>
    {%metas%}
    <title>{%title%}</title>
    {%favicon%}
    {%css%}
  </head>
  <body>
    <noscript>
      <p class="noscript">This page draws its charts with JavaScript. Please enable JavaScript to see
      the figures.</p>
    </noscript>
    {%app_entry%}
    {%config%}
    {%scripts%}
    {%renderer%}
  </body>
</html>
"""

ERROR_PAGE = """<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>{title} – {site}</title>
    <link rel="stylesheet" href="{css}">
  </head>
  <body class="error-body">
    <main class="error-page">
      <p class="eyebrow">{site}</p>
      <h1>{title}</h1>
      <p>{message}</p>
      <p><a href="{home}">Go to the overview</a></p>
    </main>
  </body>
</html>
"""

ERROR_MESSAGES = {
    404: ("Page not found", "There is no page at this address."),
    405: ("Method not allowed", "This address does not accept that kind of request."),
    413: ("Request too large", "The request was larger than the hub accepts."),
    500: ("Something went wrong", "The hub could not show this page. The error has been logged."),
}


def create_app(engine: Engine, settings: Settings) -> dash.Dash:
    """The Dash app serving the public overview at ``/``, ``/healthz`` and generic error pages."""
    server = flask.Flask("hub")
    server.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.env == "production",
        DEBUG=False,
        PROPAGATE_EXCEPTIONS=False,
    )
    app = dash.Dash(
        __name__,
        server=server,  # type: ignore[arg-type]  # Dash accepts a Flask app; its hint says bool
        assets_folder=str(ASSETS),
        serve_locally=True,
        compress=True,
        title=TITLE,
        update_title="",
        # The filters exist only inside pages a callback draws, so their ids are not in the
        # first layout.
        suppress_callback_exceptions=True,
        index_string=INDEX,
        meta_tags=[
            {"name": "description", "content": DESCRIPTION},
            {"name": "theme-color", "content": "#0B2545"},
        ],
    )
    maps = app.get_asset_url("")  # Plotly.js reads world_110m.json from here
    catalogue = load_catalogue(settings.data_dir)
    targets = load_targets(settings.data_dir, catalogue)
    cache = ReleaseCache(engine)  # this app's own: published releases read once, handed out as copies
    flows = load_flows(settings.data_dir, catalogue)
    reports = PublicReports(settings.var_dir / "reports", catalogue, targets)
    discrepancy_cache = DiscrepancyCache(catalogue, settings.data_dir)  # this app's own, returns copies
    peer_views = member_views.PeerViewCache(catalogue, settings.data_dir)  # likewise
    own_reports = OwnReports(settings.var_dir / "reports" / "own", catalogue, settings.data_dir)
    pages = routing.PageCache()
    app.layout = shell()
    headers = security.security_headers(settings, security.content_security_policy(app.csp_hashes()))
    catchall = app.config.routes_pathname_prefix + "<path:path>"
    home = app.config.requests_pathname_prefix

    @app.callback(
        Output("page", "children"),
        Output("nav", "children"),
        Input("url", "pathname"),
        Input("url", "search"),
    )
    def _show_page(pathname: str | None, search: str | None) -> tuple[object, object]:
        route = routing.parse(pathname, search)
        account = signed_in()  # from the server-side session only, never from the request's values
        if route.known and route.path in member.PATHS:
            content: object = member_page(route.path, account, params=route.params)
        elif route.known and route.path == SOURCES_PATH:
            content = overview.content(engine, topojson_url=maps)
        elif route.known:
            content = routing.render(
                route, cache, catalogue, targets, engine=engine, flows=flows, topojson_url=maps, pages=pages
            )
        else:
            content = html.Div(
                [
                    html.H2("Page not found", className="page-title"),
                    html.P("There is no page at this address."),
                ]
            )
        return content, navigation(route.path, route.params.get("release"), account)

    def signed_in() -> Account | None:
        """The account of this request's session (idle and absolute limits applied), or None."""
        if "uid" not in flask.session:
            return None
        with session_scope(engine) as session:
            return signed_in_account(session, flask.session, settings, time.time())

    def member_page(
        path: str, account: Account | None, message: str | None = None, params: dict[str, str] | None = None
    ) -> object:
        """A signed-in page for ``account``: its own organisation, or the secretariat's work."""
        if account is None:
            return member.sign_in_prompt(path)
        preview = routing.release_number(params or {})
        csrf = str(flask.session.get("csrf", ""))
        message = message or flask.session.pop("flash", None)
        try:
            with Session(engine) as session:
                if path == member.SECRETARIAT_PATH:
                    pairs = member_views.discrepancies(session, account, discrepancy_cache)
                    return member.secretariat(session, account, csrf, message, preview, pairs)
                peers = peer_views.get(session, account)
                return member.my_organisation(session, account, csrf, (params or {}).get("submission"), peers)
        except member_views.NotAllowed as refused:
            return member.not_allowed(path, f"Your account cannot see this page: {refused}.")

    @app.callback(
        Output("url", "search"),
        Input({"type": "filter", "name": ALL}, "value"),
        State({"type": "filter", "name": ALL}, "id"),
        State("url", "search"),
        prevent_initial_call=True,
    )
    def _filter_changed(values: list[object], ids: list[dict[str, str]], search: str | None) -> object:
        wanted = routing.search_for(ids, values, search)
        return no_update if wanted == (search or "") else wanted

    @server.before_request
    def _only_known_pages() -> None:
        # Dash answers every unknown GET path with the app: only the pages exist.
        path = "/" + str((flask.request.view_args or {}).get("path", ""))
        if flask.request.endpoint == catchall and not routing.parse(path, None).known:
            raise NotFound()

    def download(number: int, name: str, fmt: str) -> flask.Response:
        """A table of a published release as CSV, XLSX or JSON (never an unpublished one)."""
        if fmt not in tabular.WRITERS or name not in DOWNLOADABLE:
            raise NotFound()
        if number not in {r.number for r in cache.releases()}:
            raise NotFound()
        with Session(engine) as session:
            frame = read_release_table(session, number, name)
        try:
            body = tabular.WRITERS[fmt](frame)
        except tabular.TooLargeForFormat:
            raise NotFound() from None
        response = flask.Response(body, mimetype=tabular.MEDIA_TYPES[fmt])
        response.headers["Content-Disposition"] = f'attachment; filename="release-{number}-{name}.{fmt}"'
        return response

    server.add_url_rule(
        app.config.routes_pathname_prefix + "download/<int:number>/<name>.<fmt>", "download", download
    )

    def report(number: int, name: str) -> flask.Response:
        """A public PDF report (alliance, country) of a published release, rendered once."""
        summary = next((r for r in cache.releases() if r.number == number), None)
        if summary is None:
            raise NotFound()
        try:
            path = reports.path(cache.get(summary), name)
        except (ValueError, HubError):  # not a report name, or nothing to report for it
            raise NotFound() from None
        return flask.send_file(
            path, mimetype="application/pdf", as_attachment=True, download_name=f"release-{number}-{name}.pdf"
        )

    server.add_url_rule(
        app.config.routes_pathname_prefix + "reports/<int:number>/<name>.pdf", "report", report
    )

    def own_report(year: str) -> flask.Response:
        """The signed-in organisation's own report of ``year`` (its organisation from the
        session only); 404 for anyone else, and for a year it has no approved figures for."""
        account = signed_in()
        if account is None or account.organisation_code is None or not (year.isdigit() and len(year) == 4):
            raise NotFound()
        try:
            with Session(engine) as session:
                body = own_reports.pdf(session, account.organisation_code, year)
        except HubError:
            raise NotFound() from None
        response = flask.Response(body, mimetype="application/pdf")
        response.headers["Content-Disposition"] = (
            f'attachment; filename="{account.organisation_code}-report-{year}.pdf"'
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    server.add_url_rule(app.config.routes_pathname_prefix + "my/report-<year>.pdf", "own_report", own_report)

    def secretariat_form() -> Account:
        """The checks of every secretariat form: the session's CSRF token, then the account."""
        expected = flask.session.get("csrf")
        sent = flask.request.form.get("csrf_token", "")
        if not isinstance(expected, str) or not hmac.compare_digest(sent.encode(), expected.encode()):
            flask.abort(400)
        account = signed_in()
        if account is None or not account.is_secretariat:
            flask.abort(403)
        return account

    def secretariat_done(action: Callable[[Session], str]) -> Any:
        """Run a secretariat form's action in one transaction; back to the page (303) with
        what was done, or why not."""
        try:
            with session_scope(engine) as session:
                done = action(session)
        except HubError as refused:
            done = f"Not done: {refused}"
        flask.session["flash"] = done[:300]
        return flask.redirect(member.SECRETARIAT_PATH, code=303)

    def publish() -> Any:
        """Publish a built release from the secretariat's page."""
        account = secretariat_form()
        number = flask.request.form.get("release", "")
        if not number.isdigit() or len(number) > 9:
            flask.abort(400)
        return secretariat_done(lambda session: member_views.publish(session, account, int(number)))

    server.add_url_rule(member.PUBLISH_PATH, "publish", publish, methods=["POST"])

    def build() -> Any:
        """Ask for a release build from the secretariat's page (the scheduler runs it)."""
        account = secretariat_form()
        form = flask.request.form
        title, notes = form.get("title", ""), form.get("notes") or None
        if len(title) > 200 or (notes is not None and len(notes) > 2000):
            flask.abort(400)
        return secretariat_done(lambda session: member_views.ask_for_build(session, account, title, notes))

    server.add_url_rule(member.BUILD_PATH, "build", build, methods=["POST"])

    def decide() -> Any:
        """The approval queue's Approve and Reject forms: the CSRF token of the session, a
        signed-in secretariat account, then hub.approval (audited); back to the page with
        what was done."""
        account = secretariat_form()
        form = flask.request.form
        submission = form.get("submission", "")
        if not submission.isdigit() or len(submission) > 12:
            flask.abort(400)
        return secretariat_done(
            lambda session: member_views.decide(
                session, account, int(submission), form.get("action", ""), form.get("reason") or None
            )
        )

    server.add_url_rule(member.DECIDE_PATH, "decide", decide, methods=["POST"])

    def schedule() -> Any:
        """The secretariat's form defining a scheduled export (validated, audited)."""
        account = secretariat_form()
        form = flask.request.form
        fields: dict[str, str | list[str]] = {
            key: form.get(key, "")[:500] for key in ("name", "cron", "timezone", "folder", "email")
        }
        for key in ("formats", "reports"):
            fields[key] = [f.strip() for f in form.get(key, "")[:200].split(",") if f.strip()]
        return secretariat_done(lambda session: member_views.define_schedule(session, account, fields))

    server.add_url_rule(member.SCHEDULE_PATH, "schedule", schedule, methods=["POST"])

    @server.after_request
    def _secure(response: flask.Response) -> flask.Response:
        if flask.request.path.endswith("/_dash-update-component"):
            # a callback's answer can hold a signed-in page: never kept by a browser or a proxy
            response.headers["Cache-Control"] = "no-store"
        return security.apply_headers(response, headers)

    @server.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> tuple[str, int]:
        code = error.code or 500
        return _error_page(app, code, home), code

    @server.errorhandler(Exception)
    def _server_error(error: Exception) -> tuple[str, int]:
        logger.exception("unhandled error on %s", flask.request.path, exc_info=error)
        return _error_page(app, 500, home), 500

    def healthz() -> tuple[flask.Response, int]:
        """For the secretariat's monitoring: is the app up, and does the database answer?"""
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except SQLAlchemyError:
            logger.warning("health check: database unreachable", exc_info=True)
            response, status = flask.jsonify(status="error", database="unreachable"), 503
        else:
            response, status = flask.jsonify(status="ok", database="ok"), 200
        response.headers["Cache-Control"] = "no-store"
        return response, status

    server.add_url_rule(app.config.routes_pathname_prefix + "healthz", "healthz", healthz)
    # The server is the composition root: the ingest channels (REST API, upload page) are
    # Flask blueprints of the ingest package mounted on the same server.
    ingest_api.register(server, engine, settings)
    ingest_web.register(server, engine, settings)
    return app


def _error_page(app: dash.Dash, code: int, home: str) -> str:
    title, message = ERROR_MESSAGES.get(code, (f"Error {code}", "The request could not be completed."))
    return ERROR_PAGE.format(
        title=title, message=message, site=TITLE, home=home, css=app.get_asset_url("hub.css")
    )


NAV = [*((path, title) for path, (title, _) in routing.PAGES.items()), (SOURCES_PATH, "Public sources")]


def navigation(current: str, release: str | None, account: Account | None = None) -> list[object]:
    """The site's menu; the current page marked for screen readers; the release kept; the
    signed-in pages the account may open (or a sign-in link)."""
    suffix = f"?release={release}" if release and release.isdigit() else ""
    links: list[tuple[str, str]] = []
    if account is None:
        links.append(("/login?next=" + (current if current in member.PATHS else member.MY_PATH), "Sign in"))
    else:
        if account.organisation_code is not None:
            links.append((member.MY_PATH, member.PATHS[member.MY_PATH]))
        if account.is_secretariat:
            links.append((member.SECRETARIAT_PATH, member.PATHS[member.SECRETARIAT_PATH]))
    member_links: list[object] = [
        html.A(
            title,
            href=path,
            className="nav-link nav-link--member" + (" nav-link--current" if path == current else ""),
        )
        if path.startswith("/login")
        else dcc.Link(
            title,
            href=path,
            className="nav-link nav-link--member" + (" nav-link--current" if path == current else ""),
        )
        for path, title in links
    ]
    return [
        dcc.Link(
            # dcc.Link takes no aria-current: the current page says so in hidden text instead
            [title, html.Span(" (this page)", className="visually-hidden")] if path == current else title,
            href=path + (suffix if path != SOURCES_PATH else ""),
            className="nav-link" + (" nav-link--current" if path == current else ""),
        )
        for path, title in NAV
    ] + member_links


def shell() -> html.Div:
    """The frame every page shares; the page itself is drawn by a callback from the URL."""
    return html.Div(
        [
            dcc.Location(id="url", refresh="callback-nav"),
            html.Header(
                html.Div(
                    [
                        html.A("Skip to the figures", href="#main", className="skip-link"),
                        html.P("Global transparency hub", className="eyebrow"),
                        html.P(TITLE, className="site-title"),
                        html.Nav(id="nav", className="site-nav", **{"aria-label": "Pages"}),  # type: ignore[arg-type]
                    ],
                    className="wrap",
                ),
                className="site-header",
            ),
            html.Main(
                dcc.Loading(html.Div(id="page"), type="default", delay_show=400),
                className="page",
                id="main",
            ),
            overview._footer(),
        ],
        className="app",
    )
