"""The direction of dependencies, enforced.

The hub never imports a connector (the app factory loads them by name from
settings), and connectors reach the hub only through its contract.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONTRACT = {
    "hub.events", "hub.config", "hub.outbound", "hub.registry", "hub.ingest", "hub.db", "hub.state", "hub.sanitise",
    # The web chat publishes to the live feed, continues a chat as an email
    # reply, and reads its visitor's own conversation.
    "hub.live", "hub.replies", "hub.models",
}  # fmt: skip


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def python_files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def test_the_hub_never_imports_a_connector() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(i for i in imports_of(path) if i.split(".")[0] == "connectors")
        for path in python_files("hub")
    }
    assert {p: i for p, i in offenders.items() if i} == {}


def test_connectors_use_only_the_hubs_contract_and_never_each_other() -> None:
    problems: dict[str, list[str]] = {}
    for path in python_files("connectors"):
        own = path.relative_to(ROOT / "connectors").parts[0]
        bad = []
        for name in imports_of(path):
            top = name.split(".")
            if top[0] == "hub" and len(top) > 1:
                module = ".".join(top[:2])
                if module not in CONTRACT and name not in CONTRACT:
                    # "from hub.ingest import ingest" adds hub.ingest.ingest too; judge the module.
                    bad.append(name)
            elif top[0] == "hub" and len(top) == 1:
                bad.append(name)
            if top[0] == "connectors" and len(top) > 1 and top[1] != own and not top[1].startswith("__"):
                bad.append(name)
        if bad:
            problems[str(path.relative_to(ROOT))] = sorted(bad)
    assert problems == {}


def test_the_check_itself_catches_a_reversed_arrow(tmp_path: Path) -> None:
    offender = tmp_path / "bad.py"
    offender.write_text("from connectors.twilio import webhooks\nimport hub.web.api\n")
    assert "connectors.twilio" in imports_of(offender)
    assert "hub.web.api" in imports_of(offender)
