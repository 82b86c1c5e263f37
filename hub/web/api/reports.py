"""The dashboard's figures as JSON: the same definitions as the page (hub.reports.kpis)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime, timedelta
from typing import Any

from flask import jsonify, request
from flask.typing import ResponseReturnValue

from hub.reports import kpis
from hub.reports.views import filters_from
from hub.runtime import current_runtime
from hub.web.access import requires
from hub.web.api.blueprint import api


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


@api.get("/reports/dashboard")
@requires("reports.read")
def get_dashboard() -> ResponseReturnValue:
    filters = filters_from(request.args)
    with current_runtime().database.read() as session:
        d = kpis.dashboard(session, filters)
    body = _jsonable(asdict(d))
    body["filters"] = {
        "since": filters.since.date().isoformat(),
        "until": (filters.until - timedelta(days=1)).date().isoformat(),
        "channel": filters.channel,
        "agent": filters.agent_id,
    }
    body["volume_weekly"] = _jsonable([asdict(v) for v in kpis.weekly(d.volume)])
    return jsonify(body)
