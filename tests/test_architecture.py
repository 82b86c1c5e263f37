"""The direction of dependencies, enforced.

The hub never imports a connector (the app factory loads them by name from
settings), and connectors reach the hub only through its contract.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: The one hub module a connector may import: it re-exports what connectors use.
CONTRACT = "hub.contract"


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


def contract_violations(path: Path, connector: str) -> list[str]:
    """What ``path``, a module of ``connectors/<connector>/``, imports that a connector may not.

    Anything of the hub but :data:`CONTRACT` (``import hub`` and ``from hub
    import contract`` included: the contract is imported by its name), and any
    other connector.
    """
    bad = []
    for name in imports_of(path):
        parts = name.split(".")
        if parts[0] == "hub" and ".".join(parts[:2]) != CONTRACT:
            bad.append(name)
        if parts[0] == "connectors" and len(parts) > 1 and parts[1] != connector and not parts[1].startswith("__"):
            bad.append(name)
    return sorted(bad)


def test_connectors_use_only_the_hubs_contract_and_never_each_other() -> None:
    problems = {
        str(path.relative_to(ROOT)): contract_violations(path, path.relative_to(ROOT / "connectors").parts[0])
        for path in python_files("connectors")
    }
    assert {p: bad for p, bad in problems.items() if bad} == {}


def test_the_check_itself_catches_a_reversed_arrow(tmp_path: Path) -> None:
    offender = tmp_path / "bad.py"
    offender.write_text(
        "from connectors.twilio import webhooks\n"
        "import hub.web.api\n"
        "from hub.events import Channel\n"
        "from hub.contract import ChannelEvent, ingest\n"
    )
    assert "connectors.twilio" in imports_of(offender)
    assert "hub.web.api" in imports_of(offender)
    # The contract passes; a hub module behind it, even one it re-exports, does not.
    assert contract_violations(offender, "twilio") == ["hub.events", "hub.events.Channel", "hub.web.api"]
    assert contract_violations(offender, "email") == [
        "connectors.twilio", "connectors.twilio.webhooks", "hub.events", "hub.events.Channel", "hub.web.api",
    ]  # fmt: skip
