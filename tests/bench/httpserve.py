"""A server process for figure 2: Corridor or a bare Flask app, served by waitress.

Run as ``python -m tests.bench.httpserve corridor|bare --root DIR [--db PATH]``.
Both apps are served the way ``corridor run`` serves Corridor: waitress
``create_server`` with the same thread count, in a process of their own; for
Corridor, with the ``corridor worker`` process ``corridor run`` starts beside
it (``hub.cli.start_worker``), which processes the journal. The process
prints ``WORKER <pid>`` (Corridor only), then ``LISTENING <port>`` once it
accepts connections, and serves until it is terminated.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue
from waitress.server import create_server

from hub.cli import WAITRESS_OPTIONS

#: ``corridor run``'s default (hub/cli.py).
THREADS = 8


def bare_app() -> Flask:
    """The least a JSON endpoint can do: read the body, answer 201 with JSON."""
    app = Flask("bare")

    @app.post("/api/events")
    def post_event() -> ResponseReturnValue:
        body = request.get_data(cache=False)
        return jsonify({"received": len(body)}), 201

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["corridor", "bare"])
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--db", type=Path)
    parser.add_argument("--threads", type=int, default=THREADS)
    args = parser.parse_args()
    # waitress warns when its queue is deep; that is the load we asked for.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    if args.kind == "corridor":
        from hub.cli import start_worker
        from tests.bench.common import Workspace, hub_environ, runtime_of

        workspace = Workspace(args.root)
        app = workspace.app(args.db, "http")
        # As `corridor run` does: the web process journals and answers, a
        # worker process beside it puts what was journaled on the timeline.
        runtime_of(app).journal.detach()
        worker = start_worker(hub_environ(workspace.overrides(args.db, "http")))
        print(f"WORKER {worker.pid}", flush=True)
    else:
        app = bare_app()
    server = create_server(app, host="127.0.0.1", port=0, threads=args.threads, **WAITRESS_OPTIONS)
    print(f"LISTENING {server.effective_port}", flush=True)
    server.run()


if __name__ == "__main__":
    main()
