"""The layering of ENGINEERING.md, checked from the source: api -> services -> models, no import circles,
and no web framework below the HTTP edge."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("api", "models", "services")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for layer in LAYERS for p in (ROOT / layer).rglob("*.py")}


def _imports(path: Path, known: dict[str, Path]) -> set[str]:
    """Every project module this file imports, at any depth of the file (function-level imports too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from package import module` imports the module; `from module import name`, the module.
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def _graph() -> dict[str, set[str]]:
    known = _modules()
    return {name: _imports(path, known) - {name} for name, path in known.items()}


def _without_packages(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    # A package's __init__ holds only its docstring: an edge to it is no dependency.
    return {name: {t for t in targets if graph.get(t)} for name, targets in graph.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                cycles.append([*stack[stack.index(target) :], target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return cycles


def test_no_module_imports_itself_back_through_others() -> None:
    assert _cycles(_without_packages(_graph())) == []


def test_data_flows_one_way_api_to_services_to_models() -> None:
    wrong = [
        (name, target)
        for name, targets in _graph().items()
        for target in targets
        if (name.startswith("models") and not target.startswith("models"))
        or (name.startswith("services") and target.startswith("api"))
    ]
    assert wrong == []


def test_services_and_models_know_nothing_of_http_frameworks() -> None:
    offenders = []
    for layer in ("services", "models"):
        for path in (ROOT / layer).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                module = (
                    node.module
                    if isinstance(node, ast.ImportFrom)
                    else (node.names[0].name if isinstance(node, ast.Import) else None)
                )
                if module and module.split(".")[0] in {"fastapi", "starlette"}:
                    offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


# The modules every package may use; with services/platform they are the layer underneath.
PLATFORM_MODULES = {"settings", "database", "errors", "pagination", "localtime"}
# The one module above every package: it lists the worker's jobs.
COMPOSITION_MODULES = {"jobs"}


def _package(module: str) -> str:
    parts = module.split(".")
    if parts[0] != "services" or len(parts) < 2:
        return parts[0]
    if parts[1] in PLATFORM_MODULES:
        return "services.platform"
    return ".".join(parts[:2])


def test_no_services_package_imports_itself_back_through_others() -> None:
    packages: dict[str, set[str]] = {}
    for name, targets in _graph().items():
        if name.startswith("services"):
            source = _package(name)
            packages.setdefault(source, set()).update(
                _package(t) for t in targets if t.startswith("services") and _package(t) != source
            )
    assert _cycles(packages) == []


def test_services_top_level_holds_packages_and_a_few_platform_modules() -> None:
    modules = {p.stem for p in (ROOT / "services").glob("*.py")} - {"__init__"}
    assert modules <= PLATFORM_MODULES | COMPOSITION_MODULES


def test_every_services_package_says_what_it_decides() -> None:
    for package in (ROOT / "services").iterdir():
        if package.is_dir() and not package.name.startswith("__"):
            init = package / "__init__.py"
            assert init.exists() and ast.get_docstring(ast.parse(init.read_text())), package.name
