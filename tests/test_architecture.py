"""The package's import graph: no circle, and no import from a lower layer to a
higher one (the layers are stated in docs/architecture.md). Also: every stage
has one entry, `prefix_study.<stage>.stage.run`, and a job runner of its
name (prefix_study.stages).

The graph counts what Python executes: importing `a.b.c` runs `a/__init__.py`
and `a/b/__init__.py` first, so a module that imports `a.b.c` also imports the
packages `a` and `a.b` (an edge to each `__init__`). A package whose subtree
holds a contract is therefore itself a contract (layer 0): its `__init__` runs
whenever the contract is imported, so it may import only contracts."""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
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
              "mixed": 5, "savings": 6, "cluster": 7, "figures": 8}
#: `cost` (model/GPU profiles, capacity units, the roofline cost model) is a
#: library, not a stage: it depends on contracts only, and replay, mixed and
#: savings use it, so it ranks with the first stage library.
STAGE_RANK["cost"] = 0
#: `tiers` (KV tiers below GPU memory, and the tiers stage) uses the replay's
#: policies, the cost model and the mixed stage's interleave; the cluster takes
#: it, so it ranks after mixed and before cluster (beside savings: neither imports the other).
STAGE_RANK["tiers"] = 6
#: Stage libraries no other library imports: the engine starts vLLM (and sets
#: its environment); later stages read its outputs from files, never its code.
SEALED_STAGES = {"engine"}
#: Layers 2..5 above the stage libraries.
UPPER = [("config", 2), ("pipeline", 3), ("run_locks", 3), ("report", 4), ("stages", 5), ("cli", 5), ("capture_cli", 5)]


def module_name(path: Path, src: Path = SRC) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def find_modules(src: Path) -> dict[str, Path]:
    return {module_name(p, src): p for p in sorted((src / PACKAGE).rglob("*.py"))}


MODULES = find_modules(SRC)


def ancestors(module: str) -> list[str]:
    """The packages whose `__init__` runs before `module` (outermost first)."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def is_contract(module: str) -> bool:
    if module in CONTRACTS or module.startswith(CONTRACT_PACKAGES):
        return True
    # A package on the way to a contract: its __init__ runs with the contract.
    return any(module in ancestors(c) for c in (*CONTRACTS, *CONTRACT_PACKAGES))


def layer(module: str) -> tuple[int, int]:
    """(layer, rank within layer 1) of a module."""
    if is_contract(module):
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


def resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The package module an import names (`a.b.c` -> the longest existing module)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def imports_of(module: str, modules: dict[str, Path]) -> set[str]:
    """Package modules `module` imports anywhere in its body (functions
    included), with the package `__init__`s those imports run."""
    tree = ast.parse(modules[module].read_text())
    is_package = modules[module].name == "__init__.py"
    # Packages already running when `module` runs (its own ancestors) are not re-run.
    running = {module, *ancestors(module)}
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
            if n.split(".")[0] == PACKAGE and (target := resolve(n, modules)):
                out |= {m for m in (*ancestors(target), target) if m in modules} - running
    return out


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    return {m: imports_of(m, modules) for m in modules}


GRAPH = import_graph(MODULES)


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """Edges from a lower layer to a higher one (or into a sealed stage)."""
    bad = []
    for m, targets in graph.items():
        (lm, rm), top = layer(m), m.split(".")[1] if "." in m else ""
        for t in targets:
            (lt, rt), ttop = layer(t), t.split(".")[1] if "." in t else ""
            if lt > lm or (lt == lm == 1 and ttop != top and rt >= rm):
                bad.append(f"{m} (layer {lm}) imports {t} (layer {lt})")
            elif ttop in SEALED_STAGES and ttop != top and lm < 5:
                bad.append(f"{m} imports {t}: only the entry points may import the {ttop} stage")
    return sorted(bad)


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
    bad = layer_violations(GRAPH)
    assert not bad, "\n".join(bad)


def test_the_graph_sees_imports():
    """The checks above can fail: the graph holds known edges."""
    assert "prefix_study.traces.schema" in GRAPH["prefix_study.engine.runtime"]
    assert "prefix_study.traces" in GRAPH["prefix_study.engine.runtime"]  # through traces/__init__.py
    assert "prefix_study.figures.stage" in GRAPH["prefix_study.stages"]
    assert "prefix_study.config.schema" in GRAPH["prefix_study.replay.simulate"]
    assert "prefix_study.config" in GRAPH["prefix_study.replay.simulate"]  # through config/__init__.py
    # A module does not re-run the packages it lives in.
    assert "prefix_study.replay" not in GRAPH["prefix_study.replay.simulate"]


def write_tree(root: Path, files: dict[str, str]) -> dict[str, Path]:
    for rel, text in files.items():
        path = root / PACKAGE / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return find_modules(root)


#: A stage library that imports only the config schema, in a package whose
#: `__init__` imports the Hydra-composing module.
SYNTHETIC = {
    "__init__.py": "",
    "config/__init__.py": "from prefix_study.config.compose import compose_config\n",
    "config/schema.py": "X = 1\n",
    "config/compose.py": "import hydra\nfrom prefix_study.config.schema import X\n",
    "replay/__init__.py": "",
    "replay/kernels.py": "from prefix_study.config.schema import X\n",
}


def test_an_import_through_a_package_init_is_counted(tmp_path):
    """The failing case: `replay.kernels` imports only `config.schema`, but
    that runs `config/__init__.py`, which imports `config.compose` (Hydra)."""
    graph = import_graph(write_tree(tmp_path, SYNTHETIC))
    assert graph["prefix_study.replay.kernels"] == {"prefix_study.config", "prefix_study.config.schema"}
    assert layer_violations(graph) == [
        "prefix_study.config (layer 0) imports prefix_study.config.compose (layer 2)"]
    # A direct import of the composing module is caught as before.
    graph = import_graph(write_tree(tmp_path / "b", {
        **SYNTHETIC, "config/__init__.py": "",
        "replay/kernels.py": "from prefix_study.config.compose import compose_config\n"}))
    assert layer_violations(graph) == [
        "prefix_study.replay.kernels (layer 1) imports prefix_study.config.compose (layer 2)"]
    # With a docstring-only config/__init__.py the schema import is clean.
    graph = import_graph(write_tree(tmp_path / "c", {**SYNTHETIC, "config/__init__.py": '"""Config."""\n'}))
    assert layer_violations(graph) == []


def modules_loaded_by(code: str) -> list[str]:
    """Every module in sys.modules after running `code` in a fresh interpreter."""
    probe = code + "\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))\n"
    env = {**__import__("os").environ, "PYTHONPATH": str(SRC)}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.splitlines()[-1])


def registry_entries(modules: list[str]) -> list[str]:
    """Entry modules of the one-module-per-entry registries among `modules`."""
    packages = ("prefix_study.replay.kernels.", "prefix_study.cluster.routers.",
                "prefix_study.traces.formats.")
    return [m for m in modules if m.startswith(packages) and not m.rsplit(".", 1)[1].startswith("_")]


def test_stage_libraries_import_without_hydra():
    """Every stage library (but the engine, which starts vLLM) imports without
    Hydra; the config schema alone also without numba or any registry entry."""
    schema = modules_loaded_by("import prefix_study.config.schema")
    heavy = [m for m in schema if m.split(".")[0] in ("hydra", "numba")]
    assert not heavy and not registry_entries(schema), heavy + registry_entries(schema)
    libraries = sorted(m for m in MODULES if layer(m)[0] == 1 and m.split(".")[1] not in SEALED_STAGES
                       and not m.endswith("__main__"))
    loaded = modules_loaded_by("\n".join(f"import {m}" for m in libraries))
    assert not [m for m in loaded if m.split(".")[0] == "hydra"]


def test_composing_the_config_imports_no_kernel():
    """Validation checks policy, router and trace format names without
    importing their modules (numba, every kernel, every router)."""
    loaded = modules_loaded_by("from prefix_study.config.compose import compose_config\ncompose_config([])")
    assert "numba" not in loaded
    assert not registry_entries(loaded), registry_entries(loaded)


def test_every_stage_has_one_entry_and_a_runner():
    from prefix_study.config.hashing import STAGES
    from prefix_study.stages import RUNNERS

    for stage in STAGES:
        assert callable(importlib.import_module(f"prefix_study.{stage}.stage").run), stage
    assert set(RUNNERS) == set(STAGES)


def test_stage_rules_run_the_stage_script_and_no_shell():
    """Issue 19.3/23.4: every stage rule hands its job to the stage as a Job
    (`script:`), so no shell line is built from config values or paths."""
    import re

    from prefix_study.stages import RUNNERS

    rules = Path(__file__).resolve().parents[1] / "workflow" / "rules"
    for smk in rules.glob("*.smk"):
        text = smk.read_text()
        assert not re.search(r"^\s+shell:", text, re.M), smk.name
        for stage in re.findall(r'stage="(\w+)"', text):
            assert stage in RUNNERS, (smk.name, stage)
