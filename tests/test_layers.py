"""Imports run one way: config → models → training → data / sources → analysis /
pruning → viz → experiments → cli. A module may import its own layer and the layers
before it, never a later one, not even inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

import interp

ORDER = {
    "config": 0,
    "models": 1,
    "training": 2,
    "data": 3,
    "sources": 3,
    "analysis": 4,
    "pruning": 4,
    "viz": 5,
    "experiments": 6,
    "cli": 7,
    "__main__": 8,
}
ROOT = Path(interp.__file__).parent


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "interp":
        return None
    if len(parts) == 1:
        return -1  # the package root: re-exports, imported by everything
    return ORDER[parts[1]]


def _imports(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
            if node.module == "interp":  # from interp import experiments
                out += [(node.lineno, f"interp.{a.name}") for a in node.names if a.name in ORDER]
    return out


def test_no_module_imports_a_later_layer():
    bad = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        module = ".".join(rel.parts).removesuffix(".__init__")
        own = _layer(module)
        for line, name in _imports(path):
            other = _layer(name)
            if other is None:
                continue
            if own == -1:  # the root may re-export only what needs no experiment
                if other >= ORDER["viz"]:
                    bad.append(f"{path.name}:{line} imports {name}")
            elif other > own:
                bad.append(f"{rel}:{line} ({module}) imports {name}")
    assert not bad, "\n".join(bad)


def test_the_check_catches_a_backwards_import(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from interp.experiments import grokking\n")
    assert _imports(probe) == [(2, "interp.experiments")]
    assert _layer("interp.experiments") > _layer("interp.training.rundir")
