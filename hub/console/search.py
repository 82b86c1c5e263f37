"""The search page: every interaction of every customer, with facets, saved searches and the CSV export.

One box with the API's syntax (words, "phrases", prefix*, a phone number or
an email address as typed), filters beside it, the facet counts of every
match, highlighted snippets, newest or most relevant first, and a "more"
link that pages as deep as the matches go (keyset: the thousandth page costs
what the first does). It runs the API's search (``run_search``) on the
configured backend, so the page and ``GET /api/search`` never disagree.

Agents and supervisors both search: an agent answering a call needs "who else
wrote about order 48213" as much as a supervisor does. The export, which puts
many customers' words in one file, is the supervisors' (``search.export``)
and is audited. Saved searches belong to the agent who saved them.

On the database backends the facets count the newest ``[search]
facet_sample`` matches: a supervisor narrowing "order" in most of a million
interactions needs the proportions at once, not the exact count seconds
later; the counts say they are a sample, and one link counts them all.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import parse_qsl, urlencode

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from markupsafe import Markup
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from werkzeug.datastructures import MultiDict

from hub.auth import allowed
from hub.console.views import pages
from hub.db import affected
from hub.events import Channel, InteractionKind
from hub.models import Agent, Customer, SavedSearch, utcnow
from hub.pagination import InvalidCursor
from hub.runtime import current_runtime
from hub.search import InvalidQuery
from hub.web.access import current_agent, requires
from hub.web.api.search import SearchResult, parse_search, run_search
from hub.web.errors import ApiError

#: Hits a page.
PAGE_SIZE = 25
#: Date range presets, in days back from today (inclusive).
PRESETS = {"7d": ("Last 7 days", 7), "30d": ("Last 30 days", 30), "90d": ("Last 90 days", 90),
           "365d": ("Last 12 months", 365)}  # fmt: skip
#: The page's arguments that make a search (what a saved search keeps): not the cursor.
SEARCH_ARGUMENTS = ("q", "channel", "direction", "kind", "status", "agent", "customer", "preset", "since", "until",
                    "order")  # fmt: skip
#: Saved searches an agent may keep.
MAX_SAVED = 50


def _day(args: MultiDict[str, str], name: str) -> date | None:
    raw = (args.get(name) or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ApiError(400, name, f"is not a date (YYYY-MM-DD): {raw!r}") from None


def api_arguments(args: MultiDict[str, str], today: date) -> MultiDict[str, str]:
    """The page's arguments as the API's: a preset or days (the last one included) become times."""
    out: MultiDict[str, str] = MultiDict(
        (k, v) for k, v in args.items(multi=True) if k not in ("since", "until", "preset", "limit")
    )
    preset = args.get("preset") or ""
    since, until = _day(args, "since"), _day(args, "until")
    if preset:
        if preset not in PRESETS:
            raise ApiError(400, "preset", f"must be one of {', '.join(PRESETS)}")
        since, until = today - timedelta(days=PRESETS[preset][1] - 1), None
    if since and until and since > until:
        raise ApiError(400, "since", "must not be after the last day")
    if since:
        out["since"] = datetime.combine(since, time(), UTC).isoformat()
    if until:
        out["until"] = datetime.combine(until + timedelta(days=1), time(), UTC).isoformat()
    out["limit"] = str(PAGE_SIZE)
    return out


def _interval(args: MultiDict[str, str], today: date) -> str:
    """Histogram buckets that make 10 to 60 bars of the range searched."""
    days = PRESETS[args["preset"]][1] if args.get("preset") in PRESETS else None
    if days is None:
        since, until = _day(args, "since"), _day(args, "until") or today
        days = (until - since).days + 1 if since else 10_000
    return "day" if days <= 45 else "week" if days <= 400 else "month"


def histogram(buckets: list[tuple[datetime, int]], interval: str) -> Markup:
    """The matches over time as a small SVG bar chart: classes, not styles (the page's CSP allows none)."""
    if not buckets:
        return Markup("")
    width, height, gap = 300, 56, 1
    most = max(n for _, n in buckets)
    step = width / len(buckets)
    label = {"day": "%d %b %Y", "week": "week of %d %b %Y", "month": "%B %Y"}[interval]
    bars = []
    for n, (start, count) in enumerate(buckets):
        tall = max(2.0, (height - 4) * count / most)
        bars.append(
            f'<rect class="bar" x="{n * step:.1f}" y="{height - tall:.1f}" width="{max(1.0, step - gap):.1f}" '
            f'height="{tall:.1f}"><title>{start.strftime(label)}: {count}</title></rect>'
        )
    first, last = buckets[0][0].strftime("%d %b %Y"), buckets[-1][0].strftime("%d %b %Y")
    # Only numbers, dates and the interval (one of three words) are in it: nothing anyone typed.
    return Markup(  # noqa: S704
        f'<svg class="histogram" viewBox="0 0 {width} {height}" role="img" preserveAspectRatio="none" '
        f'aria-label="Matches by {interval}, {first} to {last}, at most {most} a {interval}">{"".join(bars)}</svg>'
    )


def _link(args: MultiDict[str, str], **changes: str | list[str] | None) -> str:
    """This search's URL with ``changes`` (None removes an argument); the cursor is always dropped."""
    merged: MultiDict[str, str] = MultiDict((k, v) for k, v in args.items(multi=True) if k in SEARCH_ARGUMENTS)
    for name, value in changes.items():
        merged.poplist(name)
        if isinstance(value, list):
            for item in value:
                merged.add(name, item)
        elif value:
            merged[name] = value
    return f"{url_for('pages.search_page')}?{urlencode(list(merged.items(multi=True)))}"


def _toggle(args: MultiDict[str, str], name: str, value: str) -> str:
    """The URL with ``value`` added to or removed from the filter ``name``."""
    chosen = [v for raw in args.getlist(name) for v in raw.split(",") if v]
    return _link(args, **{name: [v for v in chosen if v != value] if value in chosen else [*chosen, value]})


@pages.get("/search")
@requires("search", page=True)
def search_page() -> ResponseReturnValue:
    agent = current_agent()
    assert agent is not None
    runtime = current_runtime()
    args = request.args
    today = utcnow().date()
    result: SearchResult | None = None
    error: ApiError | None = None
    interval = "day"
    if (args.get("q") or "").strip():
        try:
            query = parse_search(api_arguments(args, today))
            interval = _interval(args, today)
            # Counting every match of a word that is everywhere takes seconds on the
            # database; the page counts the newest matches unless asked to count all.
            sample = None if args.get("facets") == "all" else runtime.hub.search.facet_sample
            result = run_search(runtime, query, interval, sample)
        except ApiError as exc:
            error = exc
        except InvalidQuery as exc:
            error = ApiError(400, "q", str(exc).removeprefix("q: "))
        except InvalidCursor:
            error = ApiError(400, "cursor", "this page link is broken; search again")
    with runtime.database.read() as db:
        saved = list(db.scalars(select(SavedSearch).where(SavedSearch.agent_id == agent.id).order_by(SavedSearch.name)))
        agents = {row.id: row.name for row in db.execute(select(Agent.id, Agent.name))}
        ids = {h.customer_id for h in result.hits} if result else set()
        customer = args.get("customer") or ""
        if customer.isascii() and customer.isdigit():  # "²" is a digit to isdigit(), not to int()
            ids.add(int(customer))
        named = select(Customer.id, Customer.display_name).where(Customer.id.in_(ids))
        names = {row.id: row.display_name for row in db.execute(named)}
    chosen = {name: [v for raw in args.getlist(name) for v in raw.split(",") if v] for name in SEARCH_ARGUMENTS}
    here = _link(args)
    export = None
    if result is not None and allowed(agent, "search.export"):
        export = f"{url_for('api.export')}?{urlencode(list(api_arguments(args, today).items(multi=True)))}"
    return render_template(
        "search.html",
        args=args,
        chosen=chosen,
        result=result,
        error=error,
        saved=saved,
        agents=agents,
        names=names,
        here=here,
        saved_arguments=here.partition("?")[2],
        count_all=f"{here}&facets=all",
        export=export,
        # One bar says nothing a count does not.
        histogram=histogram(result.facets.histogram, interval)
        if result and result.facets and len(result.facets.histogram) > 1
        else Markup(""),
        interval=interval,
        link=lambda **changes: _link(args, **changes),
        toggle=lambda name, value: _toggle(args, name, value),
        channels=[c.value for c in Channel],
        kinds=[k.value for k in InteractionKind],
        presets=PRESETS,
    ), 400 if error is not None and error.status == 400 else 503 if error is not None else 200


@pages.post("/search/saved")
@requires("search", page=True)
def save_search() -> ResponseReturnValue:
    """Keep this search under a name (the same name again replaces it)."""
    agent = current_agent()
    assert agent is not None
    name = " ".join(request.form.get("name", "").split())[:200]
    arguments = MultiDict(
        (k, v) for k, v in parse_qsl(request.form.get("arguments", ""))[:100] if k in SEARCH_ARGUMENTS and v
    )
    back = f"{url_for('pages.search_page')}?{urlencode(list(arguments.items(multi=True)))}"
    if not name:
        flash("Not saved: give the search a name.", "error")
        return redirect(back)
    if not (arguments.get("q") or "").strip():
        flash("Not saved: there is no search to save; type what to look for first.", "error")
        return redirect(back)
    encoded = urlencode(list(arguments.items(multi=True)))
    if len(encoded) > 2000:
        flash("Not saved: the search is too long to keep (2,000 characters at most).", "error")
        return redirect(back)
    with current_runtime().database.write() as db:
        existing = db.scalars(
            select(SavedSearch).where(SavedSearch.agent_id == agent.id, SavedSearch.name == name)
        ).first()
        if existing is not None:
            existing.arguments = encoded
            flash(f"Saved search “{name}” updated.", "ok")
        else:
            count = len(db.scalars(select(SavedSearch.id).where(SavedSearch.agent_id == agent.id)).all())
            if count >= MAX_SAVED:
                flash(f"Not saved: you keep {MAX_SAVED} searches already; delete one first.", "error")
                return redirect(back)
            db.add(SavedSearch(agent_id=agent.id, name=name, arguments=encoded))
            try:
                db.flush()
            except IntegrityError:  # saved at the same moment from another tab
                flash(f"Saved search “{name}” exists already.", "info")
                return redirect(back)
            flash(f"Search saved as “{name}”.", "ok")
    return redirect(back)


@pages.post("/search/saved/<int:saved_id>/delete")
@requires("search", page=True)
def delete_saved_search(saved_id: int) -> ResponseReturnValue:
    agent = current_agent()
    assert agent is not None
    with current_runtime().database.write() as db:
        # Only one's own: another agent's id deletes nothing.
        gone = affected(
            db.execute(delete(SavedSearch).where(SavedSearch.id == saved_id, SavedSearch.agent_id == agent.id))
        )
    flash("Saved search deleted." if gone else "That saved search does not exist (any more).", "ok" if gone else "info")
    return redirect(url_for("pages.search_page"))
