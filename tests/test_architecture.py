"""The package's import graph: no circle, and no import from a lower layer to a
higher one (the layers are stated in docs/architecture.md). Also: every stage
has one entry, `prefix_study.<stage>.stage.run`, and a CLI sub-command of its
name."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "prefix_study"

#: Layer 0: contracts and plumbing every layer may use.
CONTRACTS = {"prefix_study", "prefix_study.io", "prefix_study.env", "prefix_study.registry", "prefix_study.config.schema",
             "prefix_study.config.inputs", "prefix_study.traces.schema"}
#: Also layer 0: the external trace formats registry (the schema's workload kinds come from it).
CONTRACT_PACKAGES = ("prefix_study.traces.formats",)
#: Layer 1: the stage libraries, in DAG order. One may import another only if
#: that one comes earlier (stats and replay share a rank: neither imports the other).
STAGE_RANK = {"assets": 0, "workloads": 1, "capture": 1, "engine": 2, "traces": 3, "stats": 4, "replay": 4,
              "mixed": 5, "figures": 6, "savings": 7, "cluster": 8}
#: `cost` (model/GPU profiles, capacity units, the roofline cost model) is a
#: library, not a stage: it depends on contracts only, and replay, mixed and
#: savings use it, so it ranks with the first stage library.
STAGE_RANK["cost"] = 0
#: Stage libraries no other library imports: the engine starts vLLM (and sets
#: its environment); later stages read its outputs from files, never its code.
SEALED_STAGES = {"engine"}
#: Layers 2..5 above the stage libraries.
UPPER = [("config", 2), ("pipeline", 3), ("report", 4), ("stages", 5), ("cli", 5), ("capture_cli", 5)]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted((SRC / PACKAGE).rglob("*.py"))}


def layer(module: str) -> tuple[int, int]:
    """(layer, rank within layer 1) of a module."""
    if module in CONTRACTS or module.startswith(CONTRACT_PACKAGES):
        return 0, 0
    parts = module.split(".")
    if parts[-1] == "__main__":
        return 5, 0  # `python -m prefix_study.<pkg>`: an entry point like the CLI
    top = parts[1]
    if top in STAGE_RANK:
        return 1, STAGE_RANK[top]
    for name, level in UPPER:
        if top == name:
            return level, 0
    raise AssertionError(f"{module}: no layer; add its package to tests/test_architecture.py "
                         "and docs/architecture.md")


def resolve(name: str) -> str | None:
    """The package module an import names (`a.b.c` -> the longest existing module)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in MODULES:
            return candidate
        parts.pop()
    return None


def imports_of(module: str) -> set[str]:
    """Package modules `module` imports anywhere in its body (functions included)."""
    tree = ast.parse(MODULES[module].read_text())
    is_package = MODULES[module].name == "__init__.py"
    out = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names = [f"{base}.{a.name}" for a in node.names] or [base]
        for n in names:
            if n.split(".")[0] == PACKAGE and (target := resolve(n)) and target != module:
                out.add(target)
    return out


GRAPH = {m: imports_of(m) for m in MODULES}


def test_every_module_has_a_layer():
    for m in MODULES:
        layer(m)


def test_no_import_circle():
    """Depth-first search over the module graph; report the first circle found."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(GRAPH[m]):
            if state.get(n) == 1:
                circle = stack[stack.index(n):] + [n]
                pytest.fail("import circle: " + " -> ".join(circle))
            if n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(MODULES):
        if m not in state:
            visit(m)


def test_no_import_from_a_lower_layer_to_a_higher_one():
    bad = []
    for m, targets in GRAPH.items():
        (lm, rm), top = layer(m), m.split(".")[1] if "." in m else ""
        for t in targets:
            (lt, rt), ttop = layer(t), t.split(".")[1] if "." in t else ""
            if lt > lm or (lt == lm == 1 and ttop != top and rt >= rm):
                bad.append(f"{m} (layer {lm}) imports {t} (layer {lt})")
            elif ttop in SEALED_STAGES and ttop != top and lm < 5:
                bad.append(f"{m} imports {t}: only the entry points may import the {ttop} stage")
    assert not bad, "\n".join(sorted(bad))


def test_the_graph_sees_imports():
    """The checks above can fail: the graph holds known edges."""
    assert "prefix_study.traces.schema" in GRAPH["prefix_study.engine.runtime"]
    assert "prefix_study.replay.policies" in GRAPH["prefix_study.config.validate"]  # in a function
    assert "prefix_study.figures.stage" in GRAPH["prefix_study.stages"]


def test_every_stage_has_one_entry_and_a_subcommand():
    from prefix_study.config.hashing import STAGES
    from prefix_study.stages import build_parser

    for stage in STAGES:
        assert callable(importlib.import_module(f"prefix_study.{stage}.stage").run), stage
    sub = next(a for a in build_parser()._actions if a.dest == "stage")
    assert list(sub.choices) == list(STAGES)
