"""The signed-in pages: an organisation's own page and the secretariat's page.

Each is drawn for the account of the server-side session (dashboards.app reads it from the
cookie through hub.auth.session_account, inside the callback), never for a value the browser
sent: the organisation is the account's own. The figures come from hub.member_views.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import dash_ag_grid as dag
from dash import dcc, html
from sqlmodel import Session

from dashboards import charts
from dashboards.charts import Column, stakeholder_label
from hub import member_views
from hub.approval import SubmissionRow
from hub.auth import Account
from hub.presentation import fmt_unit, statistic_label

QUEUE_SHOWN = 20  # rows of the approval queue on the page, oldest first (each row is a form)
MY_PATH = "/my"
DECIDE_PATH = "/secretariat/decide"
PUBLISH_PATH = "/secretariat/publish"
BUILD_PATH = "/secretariat/build"
SCHEDULE_PATH = "/secretariat/schedule"
SECRETARIAT_PATH = "/secretariat"
PATHS = {MY_PATH: "My organisation", SECRETARIAT_PATH: "Secretariat"}
STATE_LABELS = {"complete": "Complete", "partial": "Partial", "missing": "Missing", "not-due": "Not due yet"}


def sign_in_prompt(path: str) -> html.Div:
    return html.Div(
        [
            html.H2(PATHS.get(path, "Signed-in pages"), className="page-title", id="page-title"),
            html.P(
                "This page is for members of the alliance. Please sign in first.", className="release-notice"
            ),
            html.P(html.A("Sign in", href=f"/login?next={quote(path)}", className="button-link")),
        ]
    )


def not_allowed(path: str, message: str) -> html.Div:
    return html.Div(
        [
            html.H2(PATHS.get(path, "Not allowed"), className="page-title", id="page-title"),
            html.P(message, className="release-notice", role="alert"),
        ]
    )


def _account_bar(account: Account, csrf: str) -> html.Div:
    who = account.display_name + (f", {account.organisation_name}" if account.organisation_name else "")
    return html.Div(
        [
            html.Span(f"Signed in as {who} ({account.role.replace('_', ' ')})"),
            html.Form(
                [
                    dcc.Input(type="hidden", name="csrf_token", value=csrf),
                    html.Button("Sign out", type="submit", className="link-button"),
                ],
                action="/logout",
                method="post",
                className="inline-form",
            ),
        ],
        className="account-bar",
    )


def _submission_columns(with_org: bool) -> list[Column]:
    columns = [
        Column(
            "Id",
            lambda r: (
                str(r.id)
                if with_org
                else dcc.Link(
                    str(r.id),
                    href=f"{MY_PATH}?submission={r.id}",
                    title=f"Validation report of submission {r.id}",
                )
            ),
            numeric=True,
        ),
        Column("Period", lambda r: r.scope),
        Column("Version", lambda r: str(r.version), numeric=True),
        Column("Channel", lambda r: r.channel),
        Column(
            "Status", lambda r: html.Span(r.status, className=f"status status--{_status_class(r.status)}")
        ),
        Column("Received", lambda r: r.received_at.strftime("%Y-%m-%d %H:%M")),
        Column("Reason", lambda r: r.review_reason or r.supersede_reason or ""),
    ]
    if with_org:
        columns.insert(1, Column("Organisation", lambda r: r.organisation))
    return columns


def _status_class(status: str) -> str:
    return {"approved": "achieved", "rejected": "deterioration", "validated": "moderate_progress"}.get(
        status, "insufficient_data"
    )


def validation_report_panel(session: Session, account: Account, requested: str | None) -> Any:
    """The stored validation report of one of the organisation's own submissions."""
    if not requested:
        return None
    report = (
        member_views.own_submission_report(session, account, int(requested)) if requested.isdigit() else None
    )
    if report is None:
        return _panel(
            "Validation report",
            html.P("Your organisation has no such submission.", className="empty"),
            "validation-report",
        )
    verdict = "accepted" if report.accepted else "rejected"
    problem_columns = [
        Column("Row", lambda p: str(p.get("row") or "file"), numeric=True),
        Column("Column", lambda p: str(p.get("column", ""))),
        Column("Severity", lambda p: str(p.get("severity", "error"))),
        Column("Rule", lambda p: str(p.get("rule", ""))),
        Column("How to fix it", lambda p: str(p.get("hint", ""))),
    ]
    summary = html.P(
        f"Submission {report.id} for {report.scope} (version {report.version}, {report.status}): "
        f"{report.source_name or 'no file name'}, {report.file_format}, {report.rows:,} row(s), {verdict}, "
        f"{len(report.problems)} problem(s).",
        className="chart-subtitle",
    )
    table = (
        charts.table(
            report.problems, problem_columns, caption="Every problem found (never a submitted value)"
        )
        if report.problems
        else html.P("No problem was found.", className="empty")
    )
    return _panel(
        f"Validation report of submission {report.id}", html.Div([summary, table]), "validation-report"
    )


OWN_REPORT_PATH = "/my/report-{year}.pdf"


def _peer_rows(view: member_views.PeerView) -> list[list[str]]:
    rows = []
    for c in view.comparisons:
        unit = "share" if c.statistic == "share_within" else c.unit
        name, what = view.names.get(c.metric, c.metric), statistic_label(c.statistic, c.param)
        label = f"{name} ({what})" if what else name
        rows.append(
            [
                label,
                c.period,
                fmt_unit(c.value, unit),
                " · ".join(fmt_unit(m, unit) for m in c.position.means),
                c.position.text,
                str(c.position.peers),
            ]
        )
    return rows


def peers_panel(view: member_views.PeerView) -> html.Section:
    """Its figures against the published, banded distribution of its peers (hub.peers)."""
    if view.year is None:
        body: Any = html.P(
            "No published peer distribution with at least 5 peers besides your organisation covers your "
            "figures yet.",
            className="empty",
        )
    else:
        columns = [
            Column("Metric", lambda r: r[0]),
            Column("Period", lambda r: r[1]),
            Column("Your figure", lambda r: r[2], numeric=True),
            Column("Peer band averages (lowest first)", lambda r: r[3]),
            Column("Position", lambda r: r[4]),
            Column("Peers", lambda r: r[5], numeric=True),
        ]
        body = charts.table(_peer_rows(view), columns, caption=f"{view.year}, against release {view.release}")
    intro = html.P(
        "Your organisation's figures against the other organisations of its kind, from the latest published "
        "release. Peers' figures are sorted and cut into bands of at least three; only each band's average is "
        "published, never one organisation's figure. Shown where at least 5 peers besides you contribute.",
        className="chart-subtitle",
    )
    return _panel("Among your peers", html.Div([intro, body]), "peers")


def reports_panel(view: member_views.PeerView) -> html.Section:
    """Links to the organisation's own PDF report of each year it has approved figures for."""
    if not view.report_years:
        body: Any = html.P("No approved figures yet.", className="empty")
    else:
        body = html.Ul(
            [
                html.Li(html.A(f"Transparency report {year} (PDF)", href=OWN_REPORT_PATH.format(year=year)))
                for year in view.report_years
            ]
        )
    intro = html.P(
        "Your own figures in a report you can publish under your organisation's name; figures approved after "
        "the latest release are marked.",
        className="chart-subtitle",
    )
    return _panel("Your transparency reports", html.Div([intro, body]), "own-reports")


def my_organisation(
    session: Session,
    account: Account,
    csrf: str,
    submission: str | None = None,
    peers: member_views.PeerView | None = None,
) -> html.Div:
    """The organisation's submissions (with a submission's validation report when asked),
    reporting duties and calendar, its position among its peers and its own reports."""
    submissions = member_views.own_submissions(session, account)
    duties = member_views.own_duties(session, account)
    calendar = member_views.own_calendar(session, account)
    duty_columns = [
        Column("Period", lambda d: d.period),
        Column("State", lambda d: STATE_LABELS.get(d.state, d.state)),
        Column("Expected", lambda d: str(d.expected), numeric=True),
        Column("Received", lambda d: str(d.received), numeric=True),
        Column("On time", lambda d: str(d.on_time), numeric=True),
        Column("Due", lambda d: d.due_date.isoformat() if d.due_date else "–"),
        Column(
            "Still to send", lambda d: ", ".join(f"{name} (due {due:%d %b %Y})" for _, name, due in d.missing)
        ),
    ]
    calendar_columns = [
        Column("Metric", lambda o: o.metric),
        Column("Every", lambda o: o.period_kind.replace("_", " ")),
        Column("Due after the period (days)", lambda o: str(o.due_days), numeric=True),
    ]
    upload = (
        html.P(html.A("Upload a file", href="/submit", className="button-link"))
        if account.can_upload
        else html.P("Your account can view but not upload.", className="chart-subtitle")
    )
    return html.Div(
        [
            html.H2(account.organisation_name or "My organisation", className="page-title", id="page-title"),
            _account_bar(account, csrf),
            html.P(
                "Your organisation's submissions and what the reporting calendar expects of it. Only your "
                "organisation's own data is shown here.",
                className="section-intro",
            ),
            upload,
            validation_report_panel(session, account, submission),
            _panel(
                "What is due",
                charts.table(duties, duty_columns, caption="Reporting in the latest quarters"),
                "duties",
            ),
            _panel(
                "Submissions",
                charts.table(submissions, _submission_columns(False), caption="Newest first")
                if submissions
                else html.P("No submission yet.", className="empty"),
                "submissions",
            ),
            _panel(
                "Reporting calendar",
                charts.table(calendar, calendar_columns, caption="What you report"),
                "calendar",
            ),
            *([peers_panel(peers), reports_panel(peers)] if peers is not None else []),
        ]
    )


def _panel(title: str, content: Any, ident: str) -> html.Section:
    return html.Section(
        [html.H3(title, className="chart-title"), html.Div(content, className="table-scroll")],
        className="panel",
        id=ident,
    )


def discrepancies_panel(pairs: Any) -> html.Section:
    """Pairs of organisations (or countries) whose two counts of one flow disagree beyond the
    flow's tolerance, from the approved data: the secretariat's follow-up list."""
    columns = [
        Column("Flow", lambda r: str(r.flow).replace("_", " ")),
        Column("Sender", lambda r: "all senders" if r.sender == "_T" else str(r.sender)),
        Column("Receiver", lambda r: str(r.receiver)),
        Column("Periods", lambda r: str(r.period_kind).replace("_", " ")),
        Column(
            "Out of tolerance",
            lambda r: f"{r.periods_out_of_tolerance} of {r.periods_compared}",
            numeric=True,
        ),
        Column("Since", lambda r: str(r.first_discrepancy)),
        Column("Latest compared", lambda r: str(r.latest_compared)),
        Column("Gap (receiver - sender)", lambda r: charts.fmt_decimal(r.latest_gap, 0), numeric=True),
        Column("Relative gap", lambda r: charts.fmt_pct(r.latest_relative_gap * 100), numeric=True),
        Column("Trend", lambda r: str(r.trend).replace("_", " ")),
    ]
    intro = html.P(
        "Flows counted at both ends (data/reconciliation/flows.yaml) whose two counts disagree beyond the "
        "flow's tolerance in at least one period, from the approved data; the largest latest gap first. "
        "A disagreement is data to follow up with both organisations, not an error to correct. Releases "
        "publish only the totals per flow.",
        className="chart-subtitle",
    )
    body = (
        html.Div(
            charts.table(list(pairs.itertuples(index=False)), columns, caption="Largest first"),
            className="table-scroll",
        )
        if not pairs.empty
        else html.P("No pair is out of tolerance.", className="empty")
    )
    return _panel("Reconciliation discrepancies", html.Div([intro, body]), "discrepancies")


def secretariat(
    session: Session,
    account: Account,
    csrf: str,
    message: str | None = None,
    preview: int | None = None,
    discrepancies: Any = None,
) -> html.Div:
    """Completeness and timeliness of reporting, the approval queue with its decisions,
    reconciliation discrepancies, the releases (build, preview and publish), scheduled exports
    and their runs, the pull connectors' status, organisations, accounts and API tokens."""
    periods, matrix = member_views.completeness_matrix(session, account)
    registers = member_views.registers(session, account)
    queue = member_views.approval_queue(session, account, limit=QUEUE_SHOWN)
    waiting = member_views.queue_length(session, account)
    return html.Div(
        [
            html.H2("Secretariat", className="page-title", id="page-title"),
            _account_bar(account, csrf),
            html.P(message, className="release-notice", role="status") if message else None,
            _panel("Completeness and timeliness", matrix_table(periods, matrix), "completeness"),
            html.Section(
                [
                    html.H3(f"Approval queue ({waiting:,})", className="chart-title"),
                    html.P(
                        f"The {len(queue)} oldest are listed. Whole periods can be approved at once from "
                        "the command line (hub approve --period).",
                        className="chart-subtitle",
                    )
                    if waiting > len(queue)
                    else None,
                    html.Div(approval_table(queue, csrf), className="table-scroll", id="approval-queue"),
                ],
                className="panel",
            ),
            discrepancies_panel(discrepancies) if discrepancies is not None else None,
            releases_panel(session, account, csrf, preview),
            schedules_panel(session, account, csrf),
            _panel(
                "Pull connectors",
                register_table("connectors", member_views.connectors(session, account)),
                "register-connectors",
            ),
            *[
                _panel(title, register_table(key, rows), f"register-{key}")
                for key, title, rows in (
                    ("organisations", "Organisations", registers["organisations"]),
                    ("users", "Accounts", registers["users"]),
                    ("tokens", "API tokens", registers["tokens"]),
                )
            ],
        ]
    )


def _grid(ident: str, rows: list[dict[str, str]], columns: list[dict[str, Any]], height: int) -> Any:
    """One sortable, filterable AG Grid (dash-ag-grid): no expression strings but the parsed
    class rules below, so the Content-Security-Policy needs no 'unsafe-eval'."""
    return dag.AgGrid(
        id=ident,
        rowData=rows,
        columnDefs=columns,
        defaultColDef={"sortable": True, "filter": True, "resizable": True, "minWidth": 110},
        columnSize="responsiveSizeToFit",
        dashGridOptions={"animateRows": False, "suppressCellFocus": False, "ensureDomOrder": True},
        style={"height": f"{height}px", "width": "100%"},
        className="hub-grid",
    )


def matrix_table(periods: Sequence[str], matrix: Sequence[member_views.MatrixRow]) -> Any:
    """The organisation x quarter matrix as one sortable, filterable grid: a table of Dash
    components per cell took the browser 7 s to draw for 116 organisations. Each state has
    its colour and its word, so colour is never the only cue."""
    if not matrix:
        return html.P("No organisation has a reporting calendar.", className="empty")
    rows = [
        {
            "organisation": row.organisation,
            "type": stakeholder_label(row.stakeholder_type),
            **{period: STATE_LABELS.get(row.states.get(period, ""), "–") for period in periods},
        }
        for row in matrix
    ]
    state_classes = {f"state-{state}": f"params.value === '{label}'" for state, label in STATE_LABELS.items()}
    columns: list[dict[str, Any]] = [
        {"headerName": "Organisation", "field": "organisation", "pinned": "left", "minWidth": 230},
        {"headerName": "Type", "field": "type"},
        *[{"headerName": period, "field": period, "cellClassRules": state_classes} for period in periods],
    ]
    return _grid("completeness-matrix", rows, columns, 520)


def approval_table(queue: Sequence[SubmissionRow], csrf: str) -> Any:
    """The queue, each row with its own form: Approve, or Reject with a reason. Plain HTML
    forms posting to DECIDE_PATH with the session's CSRF token (they work without script)."""
    if not queue:
        return html.P("Nothing waits for a decision.", className="empty")
    decide = Column(
        "Decision",
        lambda r: html.Form(
            [
                dcc.Input(type="hidden", name="csrf_token", value=csrf),
                dcc.Input(type="hidden", name="submission", value=str(r.id)),
                html.Button(
                    "Approve", type="submit", name="action", value="approve", className="small-button"
                ),
                html.Label(
                    f"Reason to reject submission {r.id}",
                    htmlFor=f"reason-{r.id}",
                    className="visually-hidden",
                ),
                dcc.Input(
                    id=f"reason-{r.id}",
                    name="reason",
                    placeholder="Reason to reject",
                    maxLength=500,
                    className="reason-input",
                ),
                html.Button(
                    "Reject",
                    type="submit",
                    name="action",
                    value="reject",
                    className="small-button small-button--danger",
                ),
            ],
            action=DECIDE_PATH,
            method="post",
            className="decision",
        ),
    )
    return charts.table(list(queue), [*_submission_columns(True), decide], caption="Oldest first")


def register_table(key: str, rows: Sequence[dict[str, str]]) -> Any:
    """A register as one sortable, filterable grid."""
    if not rows:
        return html.P("None yet.", className="empty")
    columns = [{"headerName": name.capitalize(), "field": name} for name in rows[0]]
    return _grid(f"{key}-table", list(rows), columns, 360)


def releases_panel(session: Session, account: Account, csrf: str, preview: int | None) -> html.Section:
    """Every release; a built one can be previewed (its changes against the latest published
    release) and published; a build is asked for here and run by the scheduler process (it
    reads every approved figure and runs disclosure control, longer than a web request should)."""
    found = member_views.releases(session, account)
    requests = member_views.build_requests(session, account)

    def actions(r: Any) -> Any:
        if r.status != "built":
            return ""
        return html.Div(
            [
                dcc.Link("Preview changes", href=f"{SECRETARIAT_PATH}?release={r.number}#releases"),
                html.Form(
                    [
                        dcc.Input(type="hidden", name="csrf_token", value=csrf),
                        dcc.Input(type="hidden", name="release", value=str(r.number)),
                        html.Button("Publish", type="submit", className="small-button"),
                    ],
                    action=PUBLISH_PATH,
                    method="post",
                    className="inline-form",
                ),
            ],
            className="decision",
        )

    columns = [
        Column("Release", lambda r: str(r.number), numeric=True),
        Column("Title", lambda r: r.title),
        Column(
            "Status", lambda r: html.Span(r.status, className=f"status status--{_status_class(r.status)}")
        ),
        Column("Built", lambda r: r.built_at.strftime("%Y-%m-%d %H:%M") if r.built_at else ""),
        Column("Published", lambda r: r.published_at.strftime("%Y-%m-%d %H:%M") if r.published_at else ""),
        Column("Against", lambda r: str(r.previous or "–"), numeric=True),
        Column("Indicator cells", lambda r: f"{r.tables.get('indicators', 0):,}", numeric=True),
        Column("", actions),
    ]
    request_columns = [
        Column("Request", lambda r: str(r.id), numeric=True),
        Column("Title", lambda r: r.title),
        Column("Asked by", lambda r: r.requested_by),
        Column("Asked", lambda r: r.requested_at.strftime("%Y-%m-%d %H:%M")),
        Column("State", lambda r: html.Span(r.status, className=f"status status--{_status_class(r.status)}")),
        Column("Release", lambda r: str(r.release_number or "–"), numeric=True),
        Column("Why it failed", lambda r: r.error),
    ]
    build_form = html.Form(
        [
            dcc.Input(type="hidden", name="csrf_token", value=csrf),
            _field("Title of the release", "title", "build-title", required=True, maxLength=200),
            _field("Notes (optional)", "notes", "build-notes", maxLength=2000),
            html.Button("Build a release", type="submit", className="small-button"),
        ],
        action=BUILD_PATH,
        method="post",
        className="schedule-form",
    )
    parts: list[Any] = [
        html.H3("Releases", className="chart-title"),
        html.P(
            "Ask for a build here: the scheduler process builds it from every approved figure within a "
            "minute or two, with disclosure control (or run `hub release build`). Preview and publish a "
            "built release below.",
            className="chart-subtitle",
        ),
        build_form,
        charts.table(requests, request_columns, caption="Build requests, newest first")
        if requests
        else html.P("No build asked for yet.", className="empty"),
        charts.table(found, columns, caption="Newest first")
        if found
        else html.P("No release yet.", className="empty"),
    ]
    chosen = next((r for r in found if r.number == preview and r.status == "built"), None)
    if chosen is not None:
        log = member_views.release_preview(session, account, chosen.number)
        change_columns = [
            Column("Table", lambda r: str(r.table)),
            Column("Figure", lambda r: str(r.key)),
            Column("Change", lambda r: str(r.change)),
            Column("Before", lambda r: charts.fmt_decimal(r.old_value, 0), numeric=True),
            Column("After", lambda r: charts.fmt_decimal(r.new_value, 0), numeric=True),
            Column("Why", lambda r: str(r.reason).replace("_", " ")),
        ]
        parts.append(
            html.H3(
                f"Release {chosen.number} against release {chosen.previous or 'none'}",
                className="chart-title",
            )
        )
        parts.append(
            html.Div(
                charts.table(
                    list(log.itertuples(index=False)), change_columns, caption="The 50 largest changes"
                ),
                className="table-scroll",
            )
            if not log.empty
            else html.P("No figure changes.", className="empty")
        )
    return html.Section(parts, className="panel", id="releases")


def _field(label: str, name: str, ident: str, **extra: Any) -> html.Div:
    return html.Div(
        [html.Label(label, htmlFor=ident), dcc.Input(id=ident, name=name, className="reason-input", **extra)],
        className="form-field",
    )


def schedules_panel(session: Session, account: Account, csrf: str) -> html.Section:
    """Scheduled exports: the jobs (configured, or defined here), their latest runs, and a
    form to define a job (a plain HTML form with the session's CSRF token)."""
    jobs, runs = member_views.scheduled_outputs(session, account)
    form = html.Form(
        [
            dcc.Input(type="hidden", name="csrf_token", value=csrf),
            _field(
                "Name", "name", "schedule-name", placeholder="monthly-open-data", maxLength=64, required=True
            ),
            _field(
                "When (cron: minute hour day month weekday)", "cron", "schedule-cron", placeholder="0 6 1 * *"
            ),
            _field("Time zone", "timezone", "schedule-timezone", value="Europe/Brussels", maxLength=64),
            _field(
                "Formats (comma-separated: csv, xlsx, json, parquet, sdmx, datapackage, zip)",
                "formats",
                "schedule-formats",
                placeholder="csv, parquet, sdmx, datapackage",
            ),
            _field(
                "Reports (comma-separated: alliance, country:DE, ...)",
                "reports",
                "schedule-reports",
                placeholder="alliance",
            ),
            _field("Folder (under the hub's own folder)", "folder", "schedule-folder", placeholder="exports"),
            _field("Or e-mail to (functional mailboxes, comma-separated)", "email", "schedule-email"),
            html.Button("Define the job", type="submit", className="small-button"),
        ],
        action=SCHEDULE_PATH,
        method="post",
        className="schedule-form",
        id="schedule-form",
    )
    return html.Section(
        [
            html.H3("Scheduled exports", className="chart-title"),
            html.P(
                "Run by `hub scheduler` (one process per hub): each job exports the latest published "
                "release and renders its PDF reports once per scheduled time, retries failures and "
                "alerts the secretariat.",
                className="chart-subtitle",
            ),
            html.Div(register_table("scheduled-jobs", jobs), className="table-scroll"),
            html.H4("Latest runs", className="chart-title"),
            html.Div(register_table("scheduled-runs", runs), className="table-scroll"),
            html.H4("Define a job", className="chart-title"),
            form,
        ],
        className="panel",
        id="schedules",
    )
