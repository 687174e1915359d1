"""Imports only point down: schemas → common → services → the itte command
(docs/architecture.md). Read from the code's own import statements."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# What each layer may import, besides itself and third-party code.
ALLOWED = {
    "schemas": set(),
    "common": {"schemas"},
    "services": {"common", "schemas"},
    "itte": {"services", "common", "schemas"},
}


def imported(path: Path) -> set[str]:
    """Every module named by an import in the file, at any depth."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def modules(layer: str) -> list[Path]:
    return sorted((ROOT / layer).rglob("*.py"))


@pytest.mark.parametrize("layer", ALLOWED)
def test_a_layer_imports_only_the_layers_below_it(layer: str) -> None:
    upward = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in modules(layer)
        for name in imported(path)
        if (top := name.split(".")[0]) in ALLOWED and top != layer and top not in ALLOWED[layer]
    }
    assert not upward


def test_no_service_imports_another() -> None:
    crossing = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in modules("services")
        for name in imported(path)
        if name.startswith("services.")
        and name.split(".")[1] != path.relative_to(ROOT / "services").parts[0]
    }
    assert not crossing


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from services.api import bootstrap\n")
    assert "services.api" in imported(module)


# The local harness: starting embedded servers and processes, Prometheus,
# the demo data. Only the command, the tests and the bench use it; what the
# services receive (common/servers.py) is a plain value.
LOCAL_TOOLING = ("embedded", "processes", "prometheus", "demo", "up", "started")


def test_the_local_harness_lives_with_the_command_and_nothing_below_uses_it() -> None:
    assert all((ROOT / "itte" / f"{name}.py").exists() for name in LOCAL_TOOLING)
    assert not any((ROOT / "common" / f"{name}.py").exists() for name in LOCAL_TOOLING)
    using = {
        f"{path.relative_to(ROOT)} imports {name}"
        for layer in ("common", "services")
        for path in modules(layer)
        for name in imported(path)
        if name.startswith("itte")
    }
    assert not using


API = ROOT / "services" / "api"


def test_the_api_reads_know_no_http_and_its_routes_write_no_sql() -> None:
    """``reads/`` hold the SQL and know nothing of FastAPI or the routes;
    ``routes/`` read through ``reads/`` and never touch the tables."""
    reads_knowing_http = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted((API / "reads").glob("*.py"))
        for name in imported(path)
        if name.split(".")[0] in {"fastapi", "starlette"} or name.startswith("services.api.routes")
    }
    routes_with_sql = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted((API / "routes").glob("*.py"))
        for name in imported(path)
        if name.startswith(("common.db", "sqlalchemy"))
    }
    assert not reads_knowing_http and not routes_with_sql


def test_only_the_app_includes_the_routers() -> None:
    including = {
        str(path.relative_to(ROOT))
        for path in sorted(API.rglob("*.py"))
        if ".include_router(" in path.read_text()
    }
    assert including == {"services/api/app.py"}


MAX_FUNCTION_LINES = 60


def test_no_function_of_a_service_is_longer_than_a_screen() -> None:
    long = {
        f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length} lines)"
        for path in modules("services")
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and (length := (node.end_lineno or node.lineno) - node.lineno + 1) > MAX_FUNCTION_LINES
    }
    assert not long
