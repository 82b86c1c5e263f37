"""``make bench``: Corridor's numbers, each against a baseline measured in the same run.

    python -m tests.bench            # full size (1M interactions; about 15 minutes)
    python -m tests.bench --quick    # smoke run (100k interactions)
    python -m tests.bench --only batch,http
    python -m tests.bench --only search --db /tmp/big-1m.db   # build once, then reuse

Figures (see DESIGN.md, "Numbers to reach"):

1. ``batch``    batch ingest through the pipeline vs raw sqlite3 executemany
2. ``http``     POST /api/events over waitress vs a bare Flask endpoint
3. ``timeline`` a 10k-interaction customer's first page in a 1M database vs raw SQL
4. ``search``   full-text search over 1M interactions vs the same SQL, raw
   ``searchpage`` the search page for a very common word: facets of the newest matches vs of every match
5. ``memory``   RSS while 1M events go through the pipeline (builds the DB for 3 and 4)
6. ``email``    mailbox backfill from a private Dovecot vs a raw IMAP fetch of the same mail
7. ``twilio``   signed inbound-SMS webhooks over waitress vs a bare Flask endpoint
8. ``engine``   the search engine backend (osmem-server, or HUB_BENCH_SEARCH_URL): rebuild vs raw bulk,
                indexing lag at 500 events/s, search with facets vs raw _search (10k interactions)
9. ``live``     commit -> SSE client at 100 and 1,000 clients while webhooks arrive; the inbox page
10. ``chat``    web chat: visitor <-> agent latency at 1,000 connected visitors; messages/s vs bare Flask
11. ``postgres`` batch ingest on a private PostgreSQL vs raw psycopg executemany and COPY
12. ``reports`` the supervisors' dashboard over six months of the big database vs raw SQL aggregates

Absolute times drift on shared machines; ratios against a baseline measured
seconds apart do not, which is why every figure has one. Everything lives in
a temporary directory that is removed at the end (``--keep`` keeps it).

``--db PATH`` keeps the database figures 3 and 4 read outside that directory:
when PATH does not exist it is built there (figure 5 is measured as usual);
when it does, it is upgraded to the newest migration and reused, which saves
the build (minutes at full size) when only the read figures are wanted. The
reused file must have been built with the same ``--quick`` setting.
"""

from __future__ import annotations

import argparse
import logging
import platform
import sqlite3
import sys
import time
from pathlib import Path

import sqlalchemy

from tests.bench import (
    batch,
    bench_chat,
    bench_email,
    bench_live,
    bench_reports,
    bench_search_engine,
    bench_twilio,
    bigdb,
    pg_batch,
    reads,
    webhook,
)
from tests.bench.common import FULL, QUICK, Result, say, temporary_workspace

FIGURES = (
    "batch", "http", "email", "twilio", "engine", "live", "chat", "postgres", "memory", "timeline", "search",
    "searchpage", "reports",
)  # fmt: skip


def _format_value(value: float, unit: str) -> str:
    return f"{value:,.0f} {unit}" if value >= 100 else f"{value:,.2f} {unit}"


def summary(results: list[Result]) -> str:
    rows = [("figure", "result", "baseline", "ratio", "target", "", "note")]
    for r in results:
        if r.ratio is None:
            ratio = "-"
        elif r.higher_is_better:
            ratio = f"{r.ratio:.1%}"
        else:
            ratio = f"x{r.ratio:.2f}"
        baseline = f"{_format_value(r.baseline, '')}({r.baseline_label})" if r.baseline else "-"
        rows.append(
            (r.name, _format_value(r.figure, r.unit), baseline, ratio, r.target, "PASS" if r.passed else "MISS", r.note)
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run (100k interactions)")
    parser.add_argument("--only", default="", help=f"comma-separated subset of {', '.join(FIGURES)}")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory and its databases")
    parser.add_argument(
        "--db", type=Path, help="build the 1M (or --quick) database here, or reuse it if it exists (see above)"
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when any figure misses its target")
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()] or list(FIGURES)
    unknown = sorted(set(chosen) - set(FIGURES))
    if unknown:
        parser.error(f"--only: unknown figure(s) {', '.join(unknown)}; choose from {', '.join(FIGURES)}")
    sizes = QUICK if args.quick else FULL
    # The hub's own warnings (a batch retried one by one, say) are worth seeing.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    results: list[Result] = []
    with temporary_workspace("corridor-bench-", args.keep) as workspace:
        started = time.perf_counter()
        say(
            f"Corridor benchmarks ({'quick' if args.quick else 'full'}): Python {platform.python_version()}, "
            f"SQLite {sqlite3.sqlite_version}, SQLAlchemy {sqlalchemy.__version__}, {platform.machine()}, "
            f"work dir {workspace.root}"
        )
        if "batch" in chosen:
            results += batch.run(workspace, sizes)
        if "http" in chosen:
            results += webhook.run(workspace, sizes)
        if "email" in chosen:
            results += bench_email.run(workspace, messages=500 if args.quick else bench_email.MESSAGES)
        if "twilio" in chosen:
            results += bench_twilio.run(workspace, sizes)
        if "engine" in chosen:
            results += bench_search_engine.run(workspace, quick=args.quick)
        if "live" in chosen:
            results += bench_live.run(workspace, sizes)
        if "chat" in chosen:
            results += bench_chat.run(workspace, sizes)
        if "postgres" in chosen:
            results += pg_batch.run(workspace, sizes)
        if {"memory", "timeline", "search", "searchpage", "reports"} & set(chosen):
            # One pipeline-built database serves all three; figure 5 is its by-product.
            if args.db is not None and args.db.exists():
                big, memory_results = bigdb.reuse(args.db), []
            else:
                big, memory_results = bigdb.build(workspace, sizes, at=args.db)
            if "memory" in chosen:
                results += memory_results
            if "timeline" in chosen:
                results += reads.timeline(workspace, sizes, big)
            if "search" in chosen:
                results += reads.search(workspace, sizes, big, quick=args.quick)
            if "searchpage" in chosen:
                results += reads.search_page(workspace, big, quick=args.quick)
            if "reports" in chosen:
                results += bench_reports.run(workspace, sizes, big)

    say(f"\n== Summary ({'quick' if args.quick else 'full'} run, {time.perf_counter() - started:.0f} s) ==")
    say(summary(results))
    missed = [r.name for r in results if not r.passed]
    if missed:
        say(f"\nMISS: {', '.join(missed)}")
    return 1 if missed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
