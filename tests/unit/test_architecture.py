"""Layering rules: a table of which layer may import which, a pure domain, SQL only in
transparency/db.

Every module sits in a layer named by its folder. ``LAYERS`` says what each layer may
import; the tests fail on any other import, on a module outside every layer, and on a
cycle between layers. The checkers are tested on imports made up to break them.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

from tests.support import paths

ROOT = paths.ROOT
PACKAGES = ("transparency", "codegen", "scanner", "loadtest")

# Layer -> the layers (or single modules) it may import, itself included. A name matches
# the module of that name and every module under it, "=name" that module alone; a module
# belongs to the longest layer name that matches it.
LAYERS: dict[str, frozenset[str]] = {
    "transparency.domain": frozenset({"transparency.domain"}),
    "transparency.db": frozenset({"transparency.db", "transparency.domain"}),
    "transparency.labels": frozenset(
        # its worker process takes bulk turns like every bulk process (stdlib only)
        {"transparency.labels", "transparency.domain", "transparency.runtime.turns"}
    ),
    "transparency.runtime": frozenset(
        {"transparency.runtime", "transparency.db", "transparency.domain"}
    ),
    "transparency.services": frozenset(
        {
            "transparency.services",
            "transparency.runtime",
            "transparency.labels",
            "transparency.db",
            "transparency.domain",
            "=scanner",  # the decoding library's public face for /v1/scans, nothing deeper
        }
    ),
    "transparency.api": frozenset(
        {
            "transparency.api",
            "transparency.services",
            "transparency.runtime",
            "transparency.labels",
            "transparency.db.pool",  # the pool is born in the app's lifespan; no queries
            "transparency.domain",
        }
    ),
    "transparency.serve": frozenset(
        {
            "transparency.serve",
            "transparency.api",
            "transparency.services",
            "transparency.runtime",
            "transparency.db",
            "transparency.domain",
        }
    ),
    "transparency.__main__": frozenset(
        {"transparency.serve", "transparency.runtime", "transparency.db"}
    ),
    # The tools know the service through HTTP and the domain's formats only.
    "codegen": frozenset({"codegen", "transparency.domain"}),
    "scanner": frozenset({"scanner", "transparency.domain"}),
    "loadtest": frozenset({"loadtest", "transparency.domain"}),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _project_imports(path: Path) -> set[str]:
    """The project modules ``path`` imports, relative imports resolved."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found.add(base)
            # `from transparency.api import problems` imports the module problems
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] in PACKAGES}


# The package's own __init__ holds the version and imports nothing: any layer may read it.
LEAVES = frozenset({"transparency"})


def _matches(module: str, name: str) -> bool:
    if name.startswith("="):
        return module == name[1:]
    return module == name or module.startswith(name + ".")


def layer_of(module: str, layers: Iterable[str] = LAYERS) -> str | None:
    matching = [layer for layer in layers if _matches(module, layer)]
    return max(matching, key=len) if matching else None


def violations(
    imports: Mapping[str, set[str]], layers: Mapping[str, frozenset[str]] = LAYERS
) -> list[str]:
    """Every import of ``imports`` (module -> modules it imports) the table forbids."""
    found = []
    for module, imported in sorted(imports.items()):
        layer = layer_of(module, layers)
        if module in LEAVES:
            found += [f"{module} imports {name}" for name in sorted(imported)]
            continue
        if layer is None:
            found.append(f"{module}: in no layer")
            continue
        for name in sorted(imported):
            target = layer_of(name, layers)
            if target is None or name in LEAVES:
                continue  # `from transparency.api import problems` names a module too
            if not any(_matches(name, allowed) for allowed in layers[layer]):
                found.append(f"{module} ({layer}) imports {name} ({target})")
    return found


def layer_cycles(
    imports: Mapping[str, set[str]], layers: Mapping[str, frozenset[str]] = LAYERS
) -> list[list[str]]:
    """Cycles in the graph of layers that ``imports`` actually draws."""
    edges: dict[str, set[str]] = {layer: set() for layer in layers}
    for module, imported in imports.items():
        source = layer_of(module, layers)
        for name in imported:
            target = layer_of(name, layers)
            if source and target and target != source:
                edges[source].add(target)
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        for nxt in sorted(edges[node]):
            if nxt == path[0]:
                cycles.append([*path, nxt])
            elif nxt not in path and nxt > path[0]:  # each cycle once, from its least layer
                visit(nxt, [*path, nxt])

    for start in sorted(edges):
        visit(start, [start])
    return cycles


def project_imports() -> dict[str, set[str]]:
    return {
        _module_name(path): _project_imports(path)
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
    }


def test_every_import_follows_the_layer_table() -> None:
    assert violations(project_imports()) == []


def test_no_two_layers_import_each_other_even_through_others() -> None:
    assert layer_cycles(project_imports()) == []


def test_transparency_holds_only_its_entry_points_and_layer_folders() -> None:
    top = ROOT / "transparency"
    loose = sorted(p.name for p in top.glob("*.py") if p.name not in {"__init__.py", "__main__.py"})
    folders = sorted(p.name for p in top.iterdir() if p.is_dir() and (p / "__init__.py").exists())
    assert loose == []
    assert sorted(f"transparency.{f}" for f in folders) == sorted(
        layer for layer in LAYERS if layer.startswith("transparency.") and "__" not in layer
    )


def test_the_readme_map_names_every_folder_of_transparency() -> None:
    readme = (ROOT / "README.md").read_text()
    block = readme[readme.index("```\ntransparency/") :]
    block = block[: block.index("\n```", 4)]
    # The folders of transparency/ are the map's lines indented by exactly two spaces.
    mapped = sorted(re.findall(r"^  (\w+)/ ", block, flags=re.MULTILINE))
    folders = sorted(
        p.name for p in (ROOT / "transparency").iterdir() if (p / "__init__.py").exists()
    )
    assert mapped == folders


def test_every_layer_folder_says_what_it_may_import() -> None:
    for layer in (layer for layer in LAYERS if "__" not in layer):
        init = ROOT.joinpath(*layer.split("."), "__init__.py")
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert "import" in doc, f"{init.relative_to(ROOT)} has no docstring on its imports"


def test_the_checker_refuses_an_import_against_the_table() -> None:
    wrong = {
        "transparency.db.units": {"transparency.api.app"},  # the data layer reaching up
        "transparency.api.routes.codes": {"transparency.db.units"},  # a route with SQL
        "scanner.station": {"transparency.services.fulfilment"},  # a tool inside the server
        "transparency.services.photos": {"scanner.station"},  # past scanner's public face
        "transparency.loose": set(),
    }
    assert violations(wrong) == [
        "scanner.station (scanner) imports transparency.services.fulfilment"
        " (transparency.services)",
        "transparency.api.routes.codes (transparency.api) imports transparency.db.units"
        " (transparency.db)",
        "transparency.db.units (transparency.db) imports transparency.api.app (transparency.api)",
        "transparency.loose: in no layer",
        "transparency.services.photos (transparency.services) imports scanner.station (scanner)",
    ]
    assert violations({"transparency": {"transparency.api"}}) == [
        "transparency imports transparency.api"
    ]
    allowed = {
        "transparency.api.app": {"transparency.db.pool", "transparency.services.auth"},
        "transparency.services.photos": {"scanner"},
        "codegen.cli": {"transparency.domain.codes"},
    }
    assert violations(allowed) == []


def test_the_cycle_finder_sees_a_cycle_through_a_third_layer() -> None:
    layers = {
        "a": frozenset({"a", "b", "c"}),
        "b": frozenset({"a", "b", "c"}),
        "c": frozenset({"a", "b", "c"}),
    }
    assert layer_cycles({"a.x": {"b.y"}, "b.y": {"c.z"}, "c.z": {"a.w"}}, layers) == [
        ["a", "b", "c", "a"]
    ]
    assert layer_cycles({"a.x": {"b.y"}, "b.y": {"c.z"}}, layers) == []


def test_the_import_reader_resolves_relative_and_from_imports(tmp_path: Path) -> None:
    source = ROOT / "transparency" / "api" / "app.py"
    names = _project_imports(source)
    assert "transparency.api.problems" in names
    assert "transparency.db.pool" in names


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
    for package in PACKAGES:
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


def test_the_scanner_loads_nothing_of_the_service_but_its_domain() -> None:
    probe = (
        "import sys, numpy as np, scanner\n"
        "scanner.decode(np.full((50, 50), 255, np.uint8))\n"
        "scanner.results._parse('TP', None)\n"
        "print(sorted(m for m in sys.modules if m.startswith('transparency')"
        " and not m.startswith('transparency.domain') and m != 'transparency'))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    assert out.stdout.strip() == "[]"
