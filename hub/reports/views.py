"""The supervisors' pages: the dashboard (with a CSV of every chart), the audit trail, and the survey page.

The dashboard and the audit trail are for supervisors and admins (agents get
403); the survey page is for customers and needs no login: its token is the
key.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask import Blueprint, Response, abort, render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub import customers
from hub.events import Channel
from hub.models import Agent, utcnow
from hub.reports import CsatSettings, audit, charts, csat, kpis
from hub.runtime import current_runtime
from hub.web.access import current_agent, requires
from hub.web.errors import ApiError

reports = Blueprint(
    "reports", __name__, template_folder="templates", static_folder="static", static_url_path="/reports/static"
)

#: Date range presets, in days back from today.
PRESETS = {"7d": 7, "30d": 30, "90d": 90, "180d": 180}
DEFAULT_DAYS = 30
CHANNELS = [c.value for c in Channel]
CSV_NAMES = ("volume", "volume_weekly", "first_response", "resolution", "paths", "cross_channel", "csat", "backlog")


def _day(args: Mapping[str, str], name: str) -> date | None:
    raw = args.get(name) or ""
    if not raw:
        return None
    try:
        return date.fromisoformat(raw[:10])
    except ValueError:
        raise ApiError(400, name, f"is not a date (YYYY-MM-DD): {raw!r}") from None


def filters_from(args: Mapping[str, str], today: date | None = None) -> kpis.Filters:
    """The filters of a dashboard or API request: ``since``/``until`` days (inclusive) or a ``preset``."""
    today = today or utcnow().date()
    preset = args.get("preset") or ""
    if preset and preset not in PRESETS:
        raise ApiError(400, "preset", f"must be one of {', '.join(PRESETS)}")
    since, until = _day(args, "since"), _day(args, "until")
    if preset or (since is None and until is None):
        until = today
        since = today - timedelta(days=PRESETS.get(preset, DEFAULT_DAYS) - 1)
    until = until or today
    since = since or until - timedelta(days=DEFAULT_DAYS - 1)
    if since > until:
        raise ApiError(400, "since", "must not be after until")
    if (until - since).days > 800:
        raise ApiError(400, "since", "a report covers at most 800 days")
    channel = args.get("channel") or None
    if channel is not None and channel not in CHANNELS:
        raise ApiError(400, "channel", f"unknown channel {channel!r}")
    agent_raw = args.get("agent") or ""
    if agent_raw and not agent_raw.isdigit():
        raise ApiError(400, "agent", "must be an agent id")
    return kpis.Filters(
        since=datetime.combine(since, time(), UTC),
        until=datetime.combine(until + timedelta(days=1), time(), UTC),
        channel=channel,
        agent_id=int(agent_raw) if agent_raw else None,
    )


def agent_names(session: Session) -> dict[int, str]:
    return {a.id: a.name for a in session.scalars(select(Agent).order_by(Agent.name))}


def _hours(v: float | None) -> str:
    return "" if v is None else f"{v / 3600:.2f}"


def csv_rows(name: str, d: kpis.Dashboard, agents: Mapping[int, str]) -> tuple[list[str], list[Sequence[Any]]]:
    """The numbers behind one chart, as a header and rows."""
    if name in {"volume", "volume_weekly"}:
        days = d.volume if name == "volume" else kpis.weekly(d.volume)
        return ["day" if name == "volume" else "week", "channel", "contacts", "responses"], [
            [v.day.isoformat(), v.channel, v.inbound, v.outbound] for v in days
        ]
    if name in {"first_response", "resolution"}:
        durations = d.first_response if name == "first_response" else d.resolution
        rows: list[Sequence[Any]] = [
            ["all", "", durations.overall.count, _hours(durations.overall.median), _hours(durations.overall.p90)]
        ]
        rows += [["channel", k, s.count, _hours(s.median), _hours(s.p90)] for k, s in durations.by_channel.items()]
        rows += [
            ["agent", agents.get(k, f"#{k}"), s.count, _hours(s.median), _hours(s.p90)]
            for k, s in durations.by_agent.items()
        ]
        return ["group", "name", "conversations", "median_hours", "p90_hours"], rows
    if name == "paths":
        return ["path", "conversations"], [[p.replace(">", " → "), n] for p, n in d.cross_channel.paths]
    if name == "cross_channel":
        x = d.cross_channel
        return ["figure", "value"], [
            ["conversations started", x.conversations],
            ["share using more than one channel", x.multichannel_share],
            ["channel switches per conversation", x.switches_per_conversation],
            ["conversations resolved", x.resolved],
            ["contacts per resolved conversation", x.contacts_per_resolved],
            ["first-contact resolution", x.first_contact_resolution],
            ["closes", x.closes],
            ["repeat contact rate (7 days)", x.repeat_contact_rate],
        ]
    if name == "csat":
        c = d.csat
        groups: list[tuple[str, str, kpis.CsatGroup]] = [("all", "", c.overall)]
        groups += [("channel", k, g) for k, g in c.by_channel.items()]
        groups += [("agent", agents.get(k, f"#{k}"), g) for k, g in c.by_agent.items()]
        return ["group", "name", "sent", "answered", "response_rate", "mean_score", "satisfied_share"], [
            [grp, key, g.sent, g.answered, g.response_rate, g.mean_score, g.satisfied] for grp, key, g in groups
        ]
    if name == "backlog":
        b = d.backlog
        return ["conversation_id", "customer_id", "subject", "channel", "waiting_since"], [
            [w.conversation_id, w.customer_id, w.subject, w.channel, w.waiting_since.isoformat()] for w in b.longest
        ]
    raise ApiError(404, "chart", f"no chart named {name!r}")


def _csv(header: Sequence[str], rows: Iterable[Sequence[Any]], filename: str) -> Response:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(["" if v is None else v for v in row] for row in rows)
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _charts(d: kpis.Dashboard, agents: Mapping[int, str]) -> dict[str, Any]:
    channels = sorted({v.channel for v in d.volume})
    days = sorted({v.day for v in d.volume})
    weekly = len(days) > 45
    volume = kpis.weekly(d.volume) if weekly else d.volume
    labels = sorted({v.day for v in volume})
    counts = {(v.day, v.channel): v.inbound for v in volume}
    median_p90 = [charts.Series("median", "accent"), charts.Series("p90", "faint")]

    def by_channel(durations: kpis.Durations) -> list[tuple[str, Sequence[float | None]]]:
        return [(k, [s.median, s.p90]) for k, s in durations.by_channel.items()]

    def by_agent(durations: kpis.Durations) -> list[tuple[str, Sequence[float | None]]]:
        return [(agents.get(k, f"#{k}"), [s.median, s.p90]) for k, s in durations.by_agent.items()]

    def durations_chart(chart_id: str, title: str, rows: list[tuple[str, Sequence[float | None]]]) -> Any:
        return charts.bars(chart_id, title, rows, median_p90, charts.duration) if rows else None

    return {
        "volume": charts.stacked_columns(
            "volume",
            f"Customer contacts per {'week' if weekly else 'day'}, by channel",
            [lab.strftime("%d %b") for lab in labels],
            [charts.Series(c, charts.channel_colour(c)) for c in channels],
            [[counts.get((lab, c), 0) for lab in labels] for c in channels],
        ),
        "volume_weekly": weekly,
        "first_response": charts.bars(
            "frt", "First response time by channel", by_channel(d.first_response), median_p90, charts.duration
        ),
        "first_response_agents": durations_chart(
            "frt-agents", "First response time by agent", by_agent(d.first_response)
        ),
        "resolution": charts.bars(
            "rt", "Resolution time by channel", by_channel(d.resolution), median_p90, charts.duration
        ),
        "resolution_agents": durations_chart("rt-agents", "Resolution time by agent", by_agent(d.resolution)),
        "paths": charts.bars(
            "paths",
            "Most common channel paths (conversations)",
            [(p.replace(">", " → "), [float(n)]) for p, n in d.cross_channel.paths],
            [charts.Series("conversations", "chat")],
        ),
        "csat": charts.bars(
            "csat",
            "Satisfaction by channel (mean score, 1 to 5)",
            [(k, [g.mean_score]) for k, g in d.csat.by_channel.items()],
            [charts.Series("mean", "ok")],
            "{:.2f}".format,
        ),
    }


@reports.get("/reports")
@requires("reports.read", page=True)
def dashboard() -> ResponseReturnValue:
    error = None
    try:
        filters = filters_from(request.args)
    except ApiError as exc:
        error = f"{exc.field}: {exc.message}"
        filters = filters_from({})
    with current_runtime().database.read() as session:
        d = kpis.dashboard(session, filters)
        agents = agent_names(session)
    return render_template(
        "reports/dashboard.html",
        d=d,
        charts=_charts(d, agents),
        duration=charts.duration,
        agents=agents,
        channels=CHANNELS,
        presets=PRESETS,
        args=request.args,
        since=filters.since.date(),
        until=(filters.until - timedelta(days=1)).date(),
        error=error,
        agent=current_agent(),
    ), 400 if error else 200


@reports.get("/reports/<name>.csv")
@requires("reports.read", page=True)
def chart_csv(name: str) -> ResponseReturnValue:
    if name not in CSV_NAMES:
        abort(404)
    filters = filters_from(request.args)
    runtime = current_runtime()
    with runtime.database.read() as session:
        d = kpis.dashboard(session, filters)
        header, rows = csv_rows(name, d, agent_names(session))
    with runtime.database.write() as session:
        actor = current_agent()
        customers.audit(
            session, actor.id if actor else None, "export", "report", 0,
            chart=name, since=filters.since.date().isoformat(), until=filters.until.date().isoformat(),
            channel=filters.channel, agent=filters.agent_id, rows=len(rows),
        )  # fmt: skip
    return _csv(
        header, rows, f"corridor-{name}-{filters.since.date()}-{(filters.until - timedelta(days=1)).date()}.csv"
    )


@reports.get("/audit")
@requires("audit.read", page=True)
def audit_trail() -> ResponseReturnValue:
    from hub.web.api.audit import audit_query

    error = None
    try:
        query = audit_query(request.args)
    except ApiError as exc:
        error = f"{exc.field}: {exc.message}"
        query = audit.AuditQuery()
    with current_runtime().database.read() as session:
        try:
            page = audit.audit_page(session, query)
        except audit.BadCursor:
            error = "cursor: not a cursor this page gave out"
            page = audit.audit_page(session, audit.AuditQuery())
        agents = agent_names(session)
    return render_template(
        "reports/audit.html", page=page, agents=agents, args=request.args, error=error, agent=current_agent()
    ), 400 if error else 200


@reports.route("/csat/<token>", methods=["GET", "POST"])
def survey(token: str) -> ResponseReturnValue:
    runtime = current_runtime()
    settings = runtime.settings.section("csat", CsatSettings)
    error = None
    answered = None
    if request.method == "POST":
        raw = request.form.get("score", "")
        try:
            with runtime.database.write() as session:
                answered = csat.record_answer(
                    session, settings, token, int(raw) if raw.isdigit() else 0, request.form.get("comment", "")
                )
        except csat.SurveyError as exc:
            error = exc.message
    with runtime.database.read() as session:
        found = csat.survey_for(session, token)
        if found is None:
            abort(404)
        preset = request.args.get("score", "")
    status = 200 if error is None else 400
    return render_template(
        "reports/survey.html", survey=found, answered=answered, error=error, preset=preset, agent=None
    ), status
