"""Content hashes of the config each stage depends on.

Each stage writes under `results/<stage>/<hash>/`; the hash covers only the
config that stage (and the stages before it) read, so a capacity sweep reuses
the engine traces and a new workload size re-runs everything downstream. It
also covers the content (SHA-256) of the input files a stage reads: the
ShareGPT file for the workloads stage, each external trace for the traces
stage, so a file replaced at the same path gives new results, not stale ones.
And it covers the stage's code (`code_version`), so a fix to a kernel reruns
that stage and everything after it, with or without a version bump.
"""

from __future__ import annotations

import ast
import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from prefix_study.config.inputs import _load_cache, _store_cache, cache_file, dataset_file, file_checksum, trace_file
from prefix_study.config.schema import EXTERNAL_TRACE_KINDS

#: Stage -> (upstream stages, config keys read by the stage itself).
#: `files:*` keys stand for the content of the stage's input files.
STAGE_DEPENDENCIES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "assets": ((), ("engine.model",)),
    "workloads": (("assets",), ("seed", "dataset", "workloads:sharegpt", "files:dataset")),
    # The capacity sweep is left out: its runs have their own directories
    # (engine/<h>/capacity/<capacity_sweep_hash>/c<C>), so adding a capacity
    # reruns no other engine run.
    "engine": (("workloads",), ("engine:runs", "engine:cost_clock", "engine:wa_lru")),
    "traces": (("engine",), ("workloads:external", "files:traces")),
    "stats": (("traces",), ("sweep.block_sizes",)),
    # model/hardware/cost: cost_lru's recompute costs (replay/simulate.py).
    "replay": (("traces",), ("sweep", "model", "hardware", "cost", "engine.capacities", "engine:capacity_sweep")),
    "mixed": (("traces",), ("mix", "workloads", "model", "hardware", "cost")),
    "savings": (("workloads", "replay", "mixed"), ("model", "hardware", "cost")),
    # model/hardware/cost: the cost model that times the replicas.
    "cluster": (("traces",), ("cluster", "model", "hardware", "cost", "tiers:cluster")),
    # Runs only with a tier below GPU memory (tiers/spec.py:has_lower_tiers).
    # tiers:lower: the tiers config and the break-even table's named models and
    # GPUs (their conf files); mix: the block size and interleaving of the
    # ShareGPT traces.
    "tiers": (("traces",), ("tiers:lower", "mix", "model", "hardware", "cost")),
    # Draws every figure from the tables of the stages before it.
    "figures": (("stats", "replay", "mixed", "savings", "cluster", "tiers"), ()),
}
STAGES = tuple(STAGE_DEPENDENCIES)


def _external(cfg: Any) -> list[str]:
    return [name for name, wl in cfg.workloads.items() if wl.kind in EXTERNAL_TRACE_KINDS]


def _select(cfg: Any, key: str) -> Any:
    if key == "engine:cost_clock":
        # The named model, GPU and cost factors time the engine's steps only
        # under engine.clock=cost_model.
        if cfg.engine.clock != "cost_model":
            return None
        return {k: _select(cfg, k) for k in ("model", "hardware", "cost")}
    if key == "engine:runs":
        engine = OmegaConf.to_container(cfg.engine, resolve=True, enum_to_str=True)
        for k in CAPACITY_SWEEP_KEYS + SCHEDULING_KEYS:
            engine.pop(k)
        if engine.get("mode") == "in_process":
            # Server-mode keys: an in-process run keeps the hash it had before they existed.
            engine.pop("mode")
            engine.pop("server_time_scale")
        return engine
    if key == "engine:capacity_sweep":
        return capacity_sweep_key(cfg)
    if key == "engine:wa_lru":
        # In-engine WA-LRU admits only mix.cache_friendly.
        if cfg.engine.eviction != "wa_lru":
            return None
        return sorted(str(w) for w in cfg.mix.cache_friendly)
    if key in ("tiers:lower", "tiers:cluster"):
        # Under gpu_only (no tier below GPU memory) neither the tiers stage nor
        # the cluster reads the tiers config: changing it reruns nothing.
        if len(cfg.tiers.tiers) < 2:
            return None
        tiers = OmegaConf.to_container(cfg.tiers, resolve=True, enum_to_str=True)
        if key == "tiers:cluster":
            tiers.pop("study")
            return tiers
        from prefix_study.tiers.profiles import conf_file

        study = cfg.tiers.study
        return {"tiers": tiers, "profiles": {
            f"{group}/{name}": conf_file(group, name).read_text()
            for group, names in (("model", study.break_even_models), ("hardware", study.break_even_hardware))
            for name in names}}
    if key == "files:dataset":
        return {"sharegpt_sha256": file_checksum(dataset_file(cfg))}
    if key == "files:traces":
        return {name: file_checksum(trace_file(cfg, name)) for name in _external(cfg)}
    if key.startswith("workloads:"):
        # ShareGPT workloads feed the workloads/engine stages; external traces
        # only the traces stage, so adding one reruns nothing upstream.
        external = key.endswith(":external")
        return {name: OmegaConf.to_container(wl, resolve=True, enum_to_str=True)
                for name, wl in cfg.workloads.items() if (wl.kind in EXTERNAL_TRACE_KINDS) == external}
    node = OmegaConf.select(cfg, key)
    return OmegaConf.to_container(node, resolve=True, enum_to_str=True) if OmegaConf.is_config(node) else node


#: engine.* keys that shape only the capacity sweep's runs.
CAPACITY_SWEEP_KEYS = ("capacities", "capacity_conversations")
#: engine.* keys that decide how runs are cut into jobs, not what they write.
SCHEDULING_KEYS = ("fan_out",)


def capacity_sweep_key(cfg: Any) -> dict[str, Any]:
    """What a capacity-sweep run depends on beyond the engine stage's hash:
    the conversations it runs and how its mixed stream interleaves them."""
    return {"capacity_conversations": cfg.engine.capacity_conversations,
            "mix.pattern": str(cfg.mix.pattern), "mix.burst": int(cfg.mix.burst)}


def capacity_sweep_hash(cfg: Any, length: int = 10) -> str:
    """Names the directory of the capacity sweep's runs under the engine stage."""
    blob = json.dumps(capacity_sweep_key(cfg), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:length]


# --- code versions -------------------------------------------------------------

#: The package whose source the code versions cover.
PACKAGE_DIR = Path(__file__).resolve().parents[1]
#: Importing `prefix_study.config.<x>` runs config/__init__.py (compose,
#: validate, hashing): code that shapes no stage output, so it is not followed.
_NOT_FOLLOWED = {PACKAGE_DIR / "__init__.py", PACKAGE_DIR / "config" / "__init__.py"}


@cache
def _module_file(name: str) -> Path | None:
    """The source file of module `prefix_study...` (a package's __init__.py)."""
    parts = name.split(".")
    if parts[0] != PACKAGE_DIR.name:
        return None
    base = PACKAGE_DIR.joinpath(*parts[1:])
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _package_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE_DIR.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _imported_names(path: Path, tree: ast.AST) -> list[str]:
    """Modules `path` imports at any depth of the file (and, for `from pkg
    import name`, `pkg.name` in case it is a module). A call
    `import_entries(pkg)` (registry.py) imports every public module of `pkg`."""
    package = _package_name(path) if path.name == "__init__.py" else _package_name(path).rpartition(".")[0]
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names.append(base)
            names += [f"{base}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "import_entries":
            arg = node.args[0] if node.args else None
            pkg = package if isinstance(arg, ast.Name) and arg.id == "__name__" else \
                arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else None
            if pkg:
                names.append(pkg + ".*")
    return sorted(set(n for n in names if n.split(".")[0] == PACKAGE_DIR.name))


@cache
def _registry_packages() -> dict[str, str]:
    """`NAME = Registry("package", ...)` in registry.py: {NAME: package}. A
    module importing NAME loads every public module of that package."""
    tree = ast.parse((PACKAGE_DIR / "registry.py").read_text(encoding="utf-8"))
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) \
                and getattr(node.value.func, "id", None) == "Registry" and node.value.args \
                and isinstance(node.value.args[0], ast.Constant):
            out.update({t.id: str(node.value.args[0].value) for t in node.targets if isinstance(t, ast.Name)})
    return out


def _resolve(names: list[str]) -> frozenset[Path]:
    """The files of `names` and of the packages above them (importing a module
    runs its packages' __init__.py), but for `_NOT_FOLLOWED`."""
    files: set[Path] = set()
    registries = _registry_packages()
    names = list(names) + [registries[n.rpartition(".")[2]] + ".*" for n in names
                           if n.startswith(f"{PACKAGE_DIR.name}.registry.") and n.rpartition(".")[2] in registries]
    for name in names:
        if name.endswith(".*"):
            pkg = _module_file(name[:-2])
            if pkg is not None:
                files.update(m for m in pkg.parent.glob("*.py") if not m.stem.startswith("_"))
            name = name[:-2]
        parts = name.split(".")
        for i in range(2, len(parts) + 1):
            f = _module_file(".".join(parts[:i]))
            if f is not None:
                files.add(f)
    return frozenset(files - _NOT_FOLLOWED)


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


#: Parsed files by the SHA-256 of their bytes: {"code": hash of the syntax
#: tree without docstrings, "imports": imported module names}. Kept beside
#: the input checksums (config/inputs.py), so a compose parses only the files
#: that changed since the last one.
_parsed_cache: dict[str, dict[str, Any]] = {}
_new_entries: dict[str, dict[str, Any]] = {}


def _code_cache_file() -> Path:
    return cache_file().with_name("code-versions.json")


@cache
def _parsed(path: Path) -> tuple[str, frozenset[Path]]:
    """(hash of the file's code without comments, docstrings and layout; the files it imports)."""
    raw = path.read_bytes()
    key = hashlib.sha256(raw).hexdigest()
    if not _parsed_cache:
        _parsed_cache.update(_load_cache(_code_cache_file()))
    entry = _parsed_cache.get(key)
    if entry is None or not isinstance(entry.get("imports"), list):
        tree = ast.parse(raw, filename=str(path))
        names = _imported_names(path, tree)
        code = hashlib.sha256(ast.dump(_strip_docstrings(tree), include_attributes=False).encode()).hexdigest()
        entry = _parsed_cache[key] = _new_entries[key] = {"code": code, "imports": names}
    return str(entry["code"]), _resolve(entry["imports"])


def code_files(package: str) -> list[Path]:
    """The source files a stage's outputs depend on: every module of its
    package (entry points `__main__.py` excepted) and, transitively, every
    module they import from prefix_study."""
    todo = [p for p in (PACKAGE_DIR / package).rglob("*.py") if p.name != "__main__.py"]
    seen: set[Path] = set()
    while todo:
        path = todo.pop()
        if path not in seen:
            seen.add(path)
            todo += [p for p in _parsed(path)[1] if p.name != "__main__.py"]
    return sorted(seen)


@cache
def code_version(package: str) -> str:
    """Hash of the code in `code_files(package)`: its syntax tree, so comments,
    docstrings and formatting do not count and any other edit does (no
    version bump needed). Each file is read once per process."""
    h = hashlib.sha256()
    for path in code_files(package):
        h.update(path.relative_to(PACKAGE_DIR).as_posix().encode() + b"\0" + _parsed(path)[0].encode() + b"\0")
    if _new_entries:
        _store_cache(_code_cache_file(), dict(_new_entries))
        _new_entries.clear()
    return h.hexdigest()[:16]


def stage_key(cfg: Any, stage: str, memo: dict[str, str] | None = None) -> dict[str, Any]:
    """The config a stage's outputs depend on, upstream stages included, and
    the version of the stage's code."""
    upstream, keys = STAGE_DEPENDENCIES[stage]
    key: dict[str, Any] = {k: _select(cfg, k) for k in keys}
    key["<code>"] = code_version(stage)
    for up in upstream:
        key[f"<{up}>"] = stage_hash(cfg, up, memo=memo)
    return key


def stage_hash(cfg: Any, stage: str, length: int = 10, memo: dict[str, str] | None = None) -> str:
    """Short, stable hash of `stage_key` (sorted JSON, sha256). `memo` keeps
    the full hashes of one config's stages: the Snakefile asks for them
    hundreds of times per parse and each upstream stage would be hashed again."""
    if memo is None or stage not in memo:
        blob = json.dumps(stage_key(cfg, stage, memo), sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(blob.encode()).hexdigest()
        if memo is None:
            return digest[:length]
        memo[stage] = digest
    return memo[stage][:length]


def stage_dir(cfg: Any, stage: str, memo: dict[str, str] | None = None) -> Path:
    return Path(cfg.results_dir) / stage / stage_hash(cfg, stage, memo=memo)


def run_hash(cfg: Any, memo: dict[str, str] | None = None) -> str:
    """Hash of everything that shapes a run's outputs (the final stages and
    the code that writes the run directory)."""
    blob = stage_hash(cfg, "figures", memo=memo) + stage_hash(cfg, "savings", memo=memo) \
        + stage_hash(cfg, "cluster", memo=memo) + code_version("report")
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def run_dir(cfg: Any, memo: dict[str, str] | None = None) -> Path:
    return Path(cfg.results_dir) / "runs" / f"{cfg.experiment}-{run_hash(cfg, memo)}"
