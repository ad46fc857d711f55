"""Content hashes of the config each stage depends on.

Each stage writes under `results/<stage>/<hash>/`; the hash covers only the
config that stage (and the stages before it) read, so a capacity sweep reuses
the engine traces and a new workload size re-runs everything downstream. It
also covers the content (SHA-256) of the input files a stage reads: the
ShareGPT file for the workloads stage, each external trace for the traces
stage, so a file replaced at the same path gives new results, not stale ones.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from prefix_study.config.inputs import dataset_file, file_checksum, trace_file
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
    "figures": (("stats", "replay", "mixed"), ()),
    "savings": (("workloads", "replay", "mixed"), ("model", "hardware", "cost")),
    # model/hardware/cost: the cost model that times the replicas.
    "cluster": (("traces",), ("cluster", "model", "hardware", "cost")),
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
        for k in CAPACITY_SWEEP_KEYS:
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


def capacity_sweep_key(cfg: Any) -> dict[str, Any]:
    """What a capacity-sweep run depends on beyond the engine stage's hash:
    the conversations it runs and how its mixed stream interleaves them."""
    return {"capacity_conversations": cfg.engine.capacity_conversations,
            "mix.pattern": str(cfg.mix.pattern), "mix.burst": int(cfg.mix.burst)}


def capacity_sweep_hash(cfg: Any, length: int = 10) -> str:
    """Names the directory of the capacity sweep's runs under the engine stage."""
    blob = json.dumps(capacity_sweep_key(cfg), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:length]


def stage_key(cfg: Any, stage: str) -> dict[str, Any]:
    """The config a stage's outputs depend on, upstream stages included."""
    upstream, keys = STAGE_DEPENDENCIES[stage]
    key: dict[str, Any] = {k: _select(cfg, k) for k in keys}
    for up in upstream:
        key[f"<{up}>"] = stage_hash(cfg, up)
    return key


def stage_hash(cfg: Any, stage: str, length: int = 10) -> str:
    """Short, stable hash of `stage_key` (sorted JSON, sha256)."""
    blob = json.dumps(stage_key(cfg, stage), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:length]


def stage_dir(cfg: Any, stage: str) -> Path:
    return Path(cfg.results_dir) / stage / stage_hash(cfg, stage)


def run_hash(cfg: Any) -> str:
    """Hash of everything that shapes a run's outputs (the final stages)."""
    blob = stage_hash(cfg, "figures") + stage_hash(cfg, "savings") + stage_hash(cfg, "cluster")
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def run_dir(cfg: Any) -> Path:
    return Path(cfg.results_dir) / "runs" / f"{cfg.experiment}-{run_hash(cfg)}"
