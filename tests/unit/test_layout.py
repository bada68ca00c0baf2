"""The package layout is the architecture: each layer imports only layers below it, there is no
import cycle, and registry clients are built in exactly one module."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "lanmirror"
# Lower first. A module may import its own layer and any layer before it in this list.
LAYERS = ["errors", "name", "retry", "cache", "records", "authn", "transport", "remote", "serve", "daemon", "sources",
          "ops", "report", "node", "cmd", "__main__"]


def modules() -> dict[str, ast.Module]:
    out = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = ast.parse(path.read_text())
    return out


def imports(tree: ast.Module) -> set[str]:
    return {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module
            and n.module.startswith("lanmirror")}


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_each_layer_imports_only_the_layers_below():
    wrong = []
    for name, tree in modules().items():
        if layer(name) == "":
            continue
        rank = LAYERS.index(layer(name))
        for target in imports(tree):
            if layer(target) and LAYERS.index(layer(target)) > rank:
                wrong.append(f"{name} imports {target}")
    assert not wrong, wrong


def test_no_import_cycle():
    trees = modules()
    graph = {name: {t for t in imports(tree) if t in trees} for name, tree in trees.items()}
    seen: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        seen[node] = 1
        for nxt in graph.get(node, ()):
            assert seen.get(nxt) != 1, " → ".join([*path, node, nxt])
            if nxt not in seen:
                visit(nxt, [*path, node])
        seen[node] = 2

    for node in graph:
        if node not in seen:
            visit(node, [])


def test_registry_clients_are_built_in_one_module():
    builders = sorted(name for name, tree in modules().items()
                      for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                      and n.func.id in ("Transport", "Engine") and name != "lanmirror.transport.client"
                      and name != "lanmirror.daemon.engine")
    assert set(builders) == {"lanmirror.cmd.wiring"}, builders
