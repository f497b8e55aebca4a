"""Layering rules: a pure domain, and SQL only in transparency/db."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN_IN_DOMAIN = {
    "fastapi", "starlette", "asyncpg", "httpx", "uvicorn", "qrcode", "pgserver", "socket",
    "prometheus_client", "cv2", "pyzbar", "zxingcpp", "sqlite3", "urllib", "requests",
}  # fmt: skip
# Loaded at all, even indirectly (the stdlib may load socket for itself).
NEVER_LOADED_BY_DOMAIN = FORBIDDEN_IN_DOMAIN - {"socket", "urllib"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize(
    "path", sorted((ROOT / "transparency" / "domain").glob("*.py")), ids=lambda p: p.name
)
def test_domain_module_imports_nothing_impure(path: Path) -> None:
    assert _imports(path).isdisjoint(FORBIDDEN_IN_DOMAIN)


def test_importing_the_domain_loads_no_web_or_database_library() -> None:
    domain = sorted(p.stem for p in (ROOT / "transparency" / "domain").glob("*.py"))
    probe = (
        "import sys\n"
        + "".join(f"import transparency.domain.{m}\n" for m in domain)
        + f"print(sorted(set(m.split('.')[0] for m in sys.modules) & {NEVER_LOADED_BY_DOMAIN!r}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "[]"


IMAGE_LIBRARIES = {"numpy", "PIL", "zxingcpp", "cv2", "qrcode", "pyzbar"}


def test_the_api_process_loads_no_image_library_until_one_is_used() -> None:
    """Label rendering and photo decoding load them on first use (photos in worker
    processes): an API process that serves checks and issues codes stays smaller."""
    probe = (
        "import sys\n"
        "from transparency.api.app import create_app\n"
        f"print(sorted(set(m.split('.')[0] for m in sys.modules) & {IMAGE_LIBRARIES!r}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "[]"


QUERY_METHODS = {
    "fetch", "fetchrow", "fetchval", "execute", "executemany", "copy_records_to_table",
    "copy_to_table", "copy_from_query", "cursor", "prepare",
}  # fmt: skip


def _query_calls(source: str) -> list[int]:
    """Lines that call a database query method on anything."""
    return [
        node.lineno
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in QUERY_METHODS
    ]


def test_queries_run_only_in_the_db_package() -> None:
    offenders = []
    for package in ("transparency", "codegen", "scanner", "loadtest"):
        for path in (ROOT / package).rglob("*.py"):
            if (ROOT / "transparency" / "db") in path.parents:
                continue
            if path == ROOT / "scanner" / "claims.py":
                continue  # the station's own SQLite queue, not the service's database
            offenders += [f"{path.relative_to(ROOT)}:{n}" for n in _query_calls(path.read_text())]
    assert offenders == []


def test_the_query_detector_would_notice_a_query() -> None:
    assert _query_calls("await conn.fetchrow('select 1')") == [1]
    assert _query_calls("x = 1\nawait pool.execute('delete from units')") == [2]
    assert _query_calls("await client.get('/v1/products')") == []
