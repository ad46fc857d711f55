"""Value checks that a typed schema cannot express, run before any work.

Each check raises ConfigError naming the key, the value and what is allowed,
so a bad value fails when the config is composed, not in a job later.
"""

from __future__ import annotations

import math
import re
from typing import Any

from omegaconf import DictConfig, OmegaConf

from prefix_study.config.schema import (
    CAPACITY_UNITS,
    ROUTER_VARIANTS,
    SESSION_KEYS,
    ENGINE_BLOCK_SIZE_MULTIPLE,
    EXTERNAL_TRACE_KINDS,
    SHAREGPT_KINDS,
    WORKLOAD_KINDS,
    WORKLOAD_NAME_PATTERN,
    ThinkTimeDistribution,
    workload_schema,
)

#: Experiment names become a directory name under results/runs/.
EXPERIMENT_NAME = re.compile(r"(?!\.)[A-Za-z0-9_.-]+")
#: Workload names: directory and file names, and the Snakemake wildcard
#: `{workload}` (workflow/rules/common.smk uses this pattern too).
WORKLOAD_NAME = re.compile(WORKLOAD_NAME_PATTERN)
#: Most blocks a cache capacity may hold: replays number blocks with int32
#: ids, so no trace has more distinct blocks and a larger cache is the same
#: as this one (an unbounded cache), and every capacity column stays an int64.
MAX_CAPACITY_BLOCKS = 2**31 - 1
#: Compressed trace files the importer cannot read (gzip and zstd it can).
UNSUPPORTED_COMPRESSION = {b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"PK\x03\x04": "zip"}
#: results_dir: letters (any script), digits, space and `_ . / - + , = @ % : ~`.
#: No job builds a shell line from it, but a cluster executor re-issues the
#: overrides in each job's shell command, and Snakemake reads `{...}` in a
#: path as a wildcard: quotes, `$`, backticks, `;`, braces, backslashes and
#: control characters (a newline) are refused.
SAFE_PATH = re.compile(r"[\w ./+,=@%:~-]+")


class ConfigError(ValueError):
    """A configuration key has a value the pipeline cannot run."""


def _get(cfg: Any, key: str) -> Any:
    node = cfg
    for part in key.split("."):
        node = node[part]
    return node


def _require(ok: bool, key: str, value: Any, allowed: str) -> None:
    if not ok:
        if OmegaConf.is_config(value):
            value = OmegaConf.to_container(value, enum_to_str=True)
        raise ConfigError(f"{key}={value!r} is invalid: allowed {allowed}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _positive_int(cfg: Any, key: str) -> None:
    value = _get(cfg, key)
    _require(_is_int(value) and value > 0, key, value, "a positive integer")


def _non_negative_int(cfg: Any, key: str) -> None:
    value = _get(cfg, key)
    _require(_is_int(value) and value >= 0, key, value, "a non-negative integer")


def _non_negative_number(cfg: Any, key: str, what: str) -> None:
    value = _get(cfg, key)
    _require(math.isfinite(value) and value >= 0, key, value, f"a non-negative {what}")


def _no_duplicates(key: str, values: list[Any]) -> None:
    dupes = sorted({str(v) for v in values if values.count(v) > 1})
    _require(not dupes, key, values, f"distinct values (repeated: {', '.join(dupes)})")


def _positive_list(cfg: Any, key: str) -> None:
    values = list(_get(cfg, key))
    _require(len(values) > 0, key, values, "a non-empty list")
    for v in values:
        _require(_is_int(v) and v > 0, key, values, "positive integers")
    _no_duplicates(key, values)


def _name_list(cfg: Any, key: str, allowed: list[str], empty_ok: bool = False) -> None:
    values = [str(v) for v in _get(cfg, key)]
    _require(empty_ok or len(values) > 0, key, values, f"a non-empty list of {allowed}")
    for v in values:
        _require(v in allowed, key, v, f"values from {allowed}")
    _no_duplicates(key, values)


def _has_content(path: Any) -> bool:
    """True if the (decompressed) file has a non-blank line (reads up to the first one)."""
    from prefix_study.traces.importers import open_trace

    try:
        with open_trace(path) as f:
            return any(line.strip() for line in f)
    except Exception:  # a corrupt gzip/zstd stream: the import job names the line
        return True


def _capacity_blocks(cfg: Any, key: str, capacity: Any, unit: str, block_sizes: list[int]) -> None:
    """`capacity` (in `unit`) must give at least one block, and at most
    MAX_CAPACITY_BLOCKS, at every block size it is used at."""
    from prefix_study.cost.capacity import capacity_blocks
    from prefix_study.cost.profiles import ModelProfile

    shown = f"{key}={capacity!r} ({unit})"
    _require(isinstance(capacity, (int, float)) and not isinstance(capacity, bool) and math.isfinite(capacity)
             and capacity > 0, key, capacity, f"positive finite capacities (in {unit})")
    model = ModelProfile.from_config(cfg.model) if unit == "gib" else None
    for bs in sorted(set(block_sizes)):
        blocks = capacity_blocks(capacity, unit, bs, model)
        if blocks < 1:
            per_block = f"{model.kv_bytes_per_block(bs) / 2**30:.3g} GiB of {cfg.model.name}" if model else f"{bs} tokens"
            raise ConfigError(f"{shown} is {blocks} blocks at block size {bs} (one block holds {per_block}): "
                              "a cache under one block holds nothing and every hit rate would read 0; "
                              "allowed at least one block")
        if blocks > MAX_CAPACITY_BLOCKS:
            raise ConfigError(f"{shown} is {blocks} blocks at block size {bs}: allowed at most "
                              f"{MAX_CAPACITY_BLOCKS} blocks (replays number blocks with int32 ids, so this "
                              "many already holds every block of any trace)")


def _external_block_sizes(cfg: Any, workloads: list[str] | None = None) -> list[int]:
    from prefix_study.traces.formats import get_trace_format

    names = list(cfg.workloads) if workloads is None else workloads
    return [get_trace_format(str(cfg.workloads[w].kind)).block_tokens for w in names
            if cfg.workloads[w].kind in EXTERNAL_TRACE_KINDS]


# --- workloads: one dataclass per kind ----------------------------------------------


def typed_workloads(cfg: DictConfig) -> None:
    """Check each `workloads.<name>` against its kind's dataclass (in place).

    A YAML file that starts from `<kind>_schema` is typed already; a config
    loaded from a run's config.yaml, or one whose kind was overridden, is
    merged onto the kind's dataclass, so a key that kind does not have fails.
    """
    for name in list(cfg.workloads):
        key = f"workloads.{name}"
        node = cfg.workloads[name]
        _require(OmegaConf.is_dict(node), key, node, "a workload config (a mapping with a `kind`)")
        kind = node.get("kind") if not OmegaConf.is_missing(node, "kind") else None
        _require(kind is not None, f"{key}.kind", "???", f"one of {list(WORKLOAD_KINDS)}")
        _require(str(kind) in WORKLOAD_KINDS, f"{key}.kind", str(kind), f"one of {list(WORKLOAD_KINDS)}")
        schema = workload_schema(str(kind))
        if OmegaConf.get_type(node) is schema:
            continue
        try:
            typed = OmegaConf.merge(OmegaConf.structured(schema),
                                    OmegaConf.to_container(node, enum_to_str=True))
        except Exception as exc:  # OmegaConf names the key inside the workload
            message = str(exc).replace("full_key: ", f"full_key: {key}.")
            raise ConfigError(f"{key} (kind {kind}, schema {schema.__name__}): {message}") from exc
        cfg.workloads[name] = typed


def validate_workload(cfg: Any, name: str) -> None:
    from prefix_study.config.inputs import trace_file

    key = f"workloads.{name}"
    wl = _get(cfg, key)
    if wl.kind in SHAREGPT_KINDS:
        for field in ("num_conversations", "max_prompt_tokens", "max_reply_tokens", "max_turns",
                      "context_tokens", "num_contexts", "max_question_tokens", "min_document_tokens"):
            if field in wl:
                _positive_int(cfg, f"{key}.{field}")
        rate = wl.arrival_rate
        _require(math.isfinite(rate) and rate > 0, f"{key}.arrival_rate", rate, "a positive rate (per second)")
        _non_negative_number(cfg, f"{key}.think_time.mean_s", "number of seconds")
        _non_negative_number(cfg, f"{key}.think_time.sigma",
                             f"standard deviation (of the log; used by {ThinkTimeDistribution.lognormal})")
    if wl.kind in EXTERNAL_TRACE_KINDS:
        _require(not OmegaConf.is_missing(wl, "trace_path") and bool(wl.trace_path),
                 f"{key}.trace_path", None, "a JSONL file path")
        path = trace_file(cfg, name)
        where = "" if str(path) == str(wl.trace_path) else \
            f" (relative paths are resolved against the project directory: {path})"
        _require(path.is_file(), f"{key}.trace_path", str(wl.trace_path), f"an existing file{where}")
        with open(path, "rb") as f:
            head = f.read(8)
        packed = next((name for magic, name in UNSUPPORTED_COMPRESSION.items() if head.startswith(magic)), None)
        _require(packed is None, f"{key}.trace_path", str(wl.trace_path),
                 f"JSONL, plain or gzip/zstd-compressed ({path} is {packed}-compressed; decompress it or "
                 "recompress it with gzip or zstd)")
        _require(_has_content(path), f"{key}.trace_path", str(wl.trace_path),
                 f"a file with at least one request line ({path} is empty or blank)")
        if wl.max_requests is not None:
            _positive_int(cfg, f"{key}.max_requests")
        if wl.get("block_tokens") is not None:
            _positive_int(cfg, f"{key}.block_tokens")


# --- the rest ---------------------------------------------------------------------------


def validate_top(cfg: Any) -> None:
    name = cfg.experiment
    _require(isinstance(name, str) and EXPERIMENT_NAME.fullmatch(name) is not None, "experiment", name,
             "a non-empty name of letters, digits, '_', '.' and '-' that does not start with '.' "
             "(it names the directory results/runs/<experiment>-<hash>)")
    _non_negative_int(cfg, "seed")
    _require(len(cfg.workloads) > 0, "workloads", dict(cfg.workloads), "at least one workload")
    for name in cfg.workloads:
        _require(WORKLOAD_NAME.fullmatch(str(name)) is not None, "workloads", str(name),
                 f"workload names matching {WORKLOAD_NAME_PATTERN} (letters, digits and '_'; they name "
                 "directories, files and Snakemake's {workload} wildcard), e.g. "
                 f"{re.sub(r'[^A-Za-z0-9_]', '_', str(name)) or 'my_trace'}")
    validate_results_dir(cfg)


def validate_results_dir(cfg: Any) -> None:
    """`results_dir` must be a directory (or not exist yet) below which every
    part is a directory, spelt with characters no shell, job command line or
    Snakemake wildcard reads specially (SAFE_PATH)."""
    from prefix_study.config.inputs import project_path

    value = cfg.results_dir
    _require(isinstance(value, str) and value.strip() != "", "results_dir", value, "a directory path")
    _require(SAFE_PATH.fullmatch(value) is not None, "results_dir", value,
             "a path of letters, digits, spaces and '_./-+,=@%:~' (no quotes, '$', '`', ';', '{}', "
             "backslashes or control characters such as a newline, a carriage return or a NUL byte)")
    path = project_path(value)
    where = "" if str(path) == value else f" (relative paths are resolved against the project directory: {path})"
    for part in (path, *path.parents):
        if part.exists() and not part.is_dir():
            raise ConfigError(f"results_dir={value!r} is invalid: allowed a directory, or a path to create one; "
                              f"{part} is a file{where}")
        if part.is_dir():
            break


def validate_dataset(cfg: Any) -> None:
    from prefix_study.config.inputs import project_path

    _positive_int(cfg, "dataset.max_conversations")
    path = cfg.dataset.path
    if path is not None:
        resolved = project_path(path)
        where = "" if str(resolved) == str(path) else \
            f" (relative paths are resolved against the project directory: {resolved})"
        _require(resolved.is_file(), "dataset.path", path, f"an existing ShareGPT JSON file{where}")


def validate_engine(cfg: Any) -> None:
    for key in ("capacity_blocks", "max_model_len", "max_num_seqs", "max_num_batched_tokens"):
        _positive_int(cfg, f"engine.{key}")
    for key in ("seed", "model.seed"):
        _non_negative_int(cfg, f"engine.{key}")
    _positive_int(cfg, "engine.model.n_positions")
    _positive_list(cfg, "engine.block_sizes")
    for bs in cfg.engine.block_sizes:
        _require(
            bs % ENGINE_BLOCK_SIZE_MULTIPLE == 0,
            "engine.block_sizes",
            list(cfg.engine.block_sizes),
            f"multiples of {ENGINE_BLOCK_SIZE_MULTIPLE} (vLLM's CPU attention backend); "
            "smaller block sizes are derived in sweep.block_sizes",
        )
    for key in ("step_overhead_s", "token_time_s"):
        _non_negative_number(cfg, f"engine.{key}", "number of seconds")
    if cfg.engine.capacity_conversations is not None:
        _positive_int(cfg, "engine.capacity_conversations")
    _no_duplicates("engine.capacities", list(cfg.engine.capacities))
    if list(cfg.engine.capacities):
        from prefix_study.config.schema import MIXED_RUN

        _require(MIXED_RUN not in cfg.workloads, f"workloads.{MIXED_RUN}", MIXED_RUN,
                 f"another name: {MIXED_RUN!r} names the engine capacity sweep's mixed run")
    _non_negative_number(cfg, "engine.server_time_scale", "number (real seconds per workload second)")
    if cfg.engine.mode == "server":
        _require(cfg.engine.eviction == "lru", "engine.eviction", str(cfg.engine.eviction),
                 "lru under engine.mode=server (a server keeps vLLM's own eviction)")
        _require(cfg.engine.clock != "cost_model", "engine.clock", str(cfg.engine.clock),
                 "simulated or wall under engine.mode=server (a server runs on the wall clock)")
    if cfg.engine.eviction == "wa_lru":
        _require(bool(list(cfg.mix.cache_friendly)), "mix.cache_friendly", list(cfg.mix.cache_friendly),
                 "the cache-friendly workloads (engine.eviction=wa_lru admits only those)")
    _require(
        cfg.engine.max_model_len <= cfg.engine.model.n_positions,
        "engine.max_model_len",
        cfg.engine.max_model_len,
        f"at most engine.model.n_positions ({cfg.engine.model.n_positions})",
    )
    # vLLM keeps one null block out of the pool and refuses to start unless
    # one request of max_model_len tokens fits in the rest.
    max_len = cfg.engine.max_model_len
    capacities = [("engine.capacity_blocks", cfg.engine.capacity_blocks)]
    capacities += [("engine.capacities", c) for c in cfg.engine.capacities]
    for key, capacity in capacities:
        _require(isinstance(capacity, int) and capacity > 0, key, capacity, "positive integers")
        for bs in sorted(cfg.engine.block_sizes):
            need = -(-max_len // bs) + 1
            _require(
                capacity >= need,
                key,
                capacity,
                f"at least {need} with engine.max_model_len={max_len} at engine block size {bs} "
                f"(ceil({max_len}/{bs}) blocks for one request + vLLM's null block); raise "
                f"{key} or lower engine.max_model_len",
            )


def validate_sweep(cfg: Any) -> None:
    from prefix_study.config.schema import SEMANTICS
    from prefix_study.registry import POLICY_REGISTRY

    _positive_list(cfg, "sweep.block_sizes")
    unit = str(cfg.sweep.capacity_unit)  # the unit itself is typed (CapacityUnit)
    if unit == "gib":
        caps = list(cfg.sweep.capacities)
        _require(len(caps) > 0 and all(isinstance(c, (int, float)) and not isinstance(c, bool)
                                       and math.isfinite(c) and c > 0 for c in caps),
                 "sweep.capacities", caps, "positive numbers (GiB)")
        _no_duplicates("sweep.capacities", caps)
    else:
        _positive_list(cfg, "sweep.capacities")
    # Replays run at the sweep's block sizes and at each external trace's own.
    block_sizes = [int(b) for b in cfg.sweep.block_sizes] + _external_block_sizes(cfg)
    for c in cfg.sweep.capacities:
        _capacity_blocks(cfg, "sweep.capacities", c, unit, block_sizes)
    _name_list(cfg, "sweep.policies", sorted(POLICY_REGISTRY.names()))
    _name_list(cfg, "sweep.semantics", list(SEMANTICS))
    _name_list(cfg, "sweep.curve_policies", sorted(POLICY_REGISTRY.names()), empty_ok=True)


def validate_mix(cfg: Any) -> None:
    from prefix_study.config.schema import SEMANTICS
    from prefix_study.registry import POLICY_REGISTRY

    _positive_int(cfg, "mix.burst")
    _positive_int(cfg, "mix.block_size")
    _positive_list(cfg, "mix.capacities")
    for c in cfg.mix.capacities:
        _capacity_blocks(cfg, "mix.capacities", c, "blocks", [int(cfg.mix.block_size)])
    _name_list(cfg, "mix.baselines", sorted(POLICY_REGISTRY.names()))
    _name_list(cfg, "mix.semantics", list(SEMANTICS))
    _name_list(cfg, "mix.cache_friendly", list(cfg.workloads), empty_ok=True)
    t = cfg.mix.friendly_threshold
    _require(0.0 <= t <= 1.0, "mix.friendly_threshold", t, "a fraction in [0, 1]")


def validate_cost(cfg: Any) -> None:
    """The named model and GPU (conf/model, conf/hardware) and the cost model's factors."""
    for key in ("num_layers", "hidden_size", "num_attention_heads", "num_kv_heads", "head_dim",
                "num_params", "kv_dtype_bytes"):
        _positive_int(cfg, f"model.{key}")
    for key in ("v_head_dim", "moe_num_experts", "moe_top_k", "moe_expert_params"):
        if cfg.model.get(key) is not None:
            _positive_int(cfg, f"model.{key}")
    moe = [cfg.model.get(k) is None for k in ("moe_num_experts", "moe_top_k", "moe_expert_params")]
    _require(all(moe) or not any(moe), "model.moe_num_experts", cfg.model.get("moe_num_experts"),
             "moe_num_experts, moe_top_k and moe_expert_params all set (MoE) or all null (dense)")
    if not any(moe):
        _require(cfg.model.moe_top_k <= cfg.model.moe_num_experts, "model.moe_top_k", cfg.model.moe_top_k,
                 f"at most model.moe_num_experts ({cfg.model.moe_num_experts})")
        _require(cfg.model.moe_top_k * cfg.model.moe_expert_params < cfg.model.num_params,
                 "model.moe_expert_params", cfg.model.moe_expert_params,
                 "a value with moe_top_k x moe_expert_params < num_params (the activated count)")
    for key in ("peak_bf16_flops", "mem_bandwidth_bytes_s", "memory_bytes", "host_link_bytes_s",
                "interconnect_bytes_s"):
        value = _get(cfg, f"hardware.{key}")
        _require(math.isfinite(value) and value > 0, f"hardware.{key}", value, "a positive number")
    _require(cfg.hardware.interconnect in ("nvlink", "pcie"), "hardware.interconnect",
             cfg.hardware.interconnect, "nvlink or pcie")
    _non_negative_number(cfg, "hardware.allreduce_latency_s", "number of seconds")
    for key in ("compute_efficiency_bf16", "compute_efficiency_fp8", "memory_efficiency"):
        value = cfg.hardware.get(key)
        if value is not None:
            _require(0 < value <= 1, f"hardware.{key}", value, "a fraction in (0, 1]")
    if cfg.cost.precision == "fp8":
        _require(cfg.hardware.peak_fp8_flops is not None, "cost.precision", "fp8",
                 f"bf16 on hardware {cfg.hardware.name} (no FP8 tensor cores)")
        _require(cfg.hardware.compute_efficiency_fp8 is not None, "cost.precision", "fp8",
                 f"bf16 on hardware {cfg.hardware.name} (no hardware.compute_efficiency_fp8)")
    _positive_int(cfg, "cost.num_gpus")
    for key in ("compute_efficiency", "memory_efficiency"):
        value = cfg.cost[key]
        if value is not None:
            _require(0 < value <= 1, f"cost.{key}", value, "a fraction in (0, 1] or null (the hardware's)")
    _non_negative_number(cfg, "cost.step_overhead_s", "number of seconds")
    _non_negative_number(cfg, "cost.prefill_overhead_s", "number of seconds")
    _non_negative_number(cfg, "cost.gemm_half_tokens", "number of tokens")
    sharegpt = [w for w, wl in cfg.workloads.items() if wl.kind in SHAREGPT_KINDS]
    _name_list(cfg, "cost.compare_workloads", sharegpt, empty_ok=True)


def validate_tiers(cfg: Any) -> None:
    """The KV tier hierarchy (conf/tiers), resolved at every sweep block size
    on the named model and GPU (tiers/spec.py holds the checks)."""
    from prefix_study.cost.profiles import HardwareProfile, ModelProfile
    from prefix_study.tiers.spec import TierConfigError, hierarchy

    hardware = HardwareProfile.from_config(cfg.hardware)
    model = ModelProfile.from_config(cfg.model)
    for bs in cfg.sweep.block_sizes:
        try:
            hierarchy(cfg.tiers, hardware, model, int(bs))
        except TierConfigError as exc:
            raise ConfigError(f"{exc} (sweep.block_sizes: {list(cfg.sweep.block_sizes)})") from None
    if len(cfg.tiers.tiers) > 1:
        validate_tier_study(cfg, hardware, model)


def validate_tier_study(cfg: Any, hardware: Any, model: Any) -> None:
    """What the tiers stage (and the cluster's tiers) run: the hierarchy at the
    block sizes of the mix and of the imported traces, and `tiers.study`."""
    from prefix_study.registry import online_policy_names
    from prefix_study.tiers.profiles import conf_names
    from prefix_study.tiers.spec import TierConfigError, hierarchy
    from prefix_study.traces.formats import external_block_tokens

    sizes = {"mix.block_size": int(cfg.mix.block_size), "cluster.block_size": int(cfg.cluster.block_size)}
    sizes |= {f"workloads.{w}.block_tokens": int(external_block_tokens(wl)) for w, wl in cfg.workloads.items()
              if wl.kind in EXTERNAL_TRACE_KINDS}
    for where, bs in sizes.items():
        try:
            hierarchy(cfg.tiers, hardware, model, bs)
        except TierConfigError as exc:
            raise ConfigError(f"{exc} ({where}: {bs})") from None
    study = "tiers.study"
    tier = _get(cfg, f"{study}.tier")
    _require(_is_int(tier) and 1 <= tier < len(cfg.tiers.tiers), f"{study}.tier", tier,
             f"the index of a tier below GPU memory, 1..{len(cfg.tiers.tiers) - 1}")
    _require(math.isfinite(cfg.tiers.study.gpu_capacity) and cfg.tiers.study.gpu_capacity > 0,
             f"{study}.gpu_capacity", cfg.tiers.study.gpu_capacity, "a positive capacity")
    _name_list(cfg, f"{study}.break_even_models", conf_names("model"), empty_ok=True)
    _name_list(cfg, f"{study}.break_even_hardware", conf_names("hardware"), empty_ok=True)
    policies = online_policy_names()
    _require(str(cfg.tiers.study.gpu_policy) in policies, f"{study}.gpu_policy", cfg.tiers.study.gpu_policy,
             f"an online policy from {policies}")
    for v in cfg.tiers.study.capacities:
        _require(math.isfinite(float(v)) and float(v) >= 0, f"{study}.capacities", v, "non-negative capacities")
    for v in cfg.tiers.study.read_bytes_s:
        _require(math.isfinite(float(v)) and float(v) > 0, f"{study}.read_bytes_s", v, "positive bytes/s")
    for v in cfg.tiers.study.prefix_tokens:
        _require(_is_int(v) and v > 0, f"{study}.prefix_tokens", v, "positive numbers of tokens")


def validate_cluster(cfg: Any) -> None:
    from prefix_study.registry import online_policy_names, unsupported_reason
    from prefix_study.cluster.capacity import capacity_error, selected_workloads
    from prefix_study.cluster.routers import router_names

    c = cfg.cluster
    _positive_list(cfg, "cluster.replicas")
    routers = list(c.routers)
    known = router_names()
    _require(len(routers) > 0, "cluster.routers", routers, f"a non-empty list of {known}")
    for r in routers:
        _require(r in known, "cluster.routers", r, f"routers from {known}")
    variants = list(c.variants)
    _require(len(variants) > 0, "cluster.variants", variants, f"a non-empty list of {list(ROUTER_VARIANTS)}")
    for v in variants:
        _require(v in ROUTER_VARIANTS, "cluster.variants", v, f"values from {list(ROUTER_VARIANTS)}")
    reason = unsupported_reason(c.policy)
    _require(c.policy in online_policy_names(), "cluster.policy", c.policy,
             f"one of {online_policy_names()} (online policies)"
             + (f"; {reason}" if reason else ""))
    _require(c.capacity_unit in CAPACITY_UNITS, "cluster.capacity_unit", c.capacity_unit,
             f"one of {list(CAPACITY_UNITS)}")
    _positive_int(cfg, "cluster.max_batch")
    _positive_int(cfg, "cluster.block_size")
    _non_negative_int(cfg, "cluster.seed")
    for w in c.workloads:
        _require(w in cfg.workloads, "cluster.workloads", w, f"workloads from {list(cfg.workloads)}")
    # ShareGPT workloads' traces at cluster.block_size, external ones at their own.
    external = _external_block_sizes(cfg, selected_workloads(cfg))
    sharegpt = [w for w in selected_workloads(cfg) if cfg.workloads[w].kind not in EXTERNAL_TRACE_KINDS]
    _capacity_blocks(cfg, "cluster.capacity", c.capacity, str(c.capacity_unit),
                     ([int(c.block_size)] if sharegpt or c.mixed else []) + external)
    for w in selected_workloads(cfg):
        if cfg.workloads[w].kind not in EXTERNAL_TRACE_KINDS:
            # The longest request the engine accepts; external traces are checked when read.
            try:
                err = capacity_error(cfg, int(c.block_size), math.ceil(cfg.engine.max_model_len / c.block_size),
                                     f"a request of engine.max_model_len={cfg.engine.max_model_len} tokens")
            except ValueError as e:
                raise ConfigError(str(e)) from None
            if err:
                raise ConfigError(err)
            break
    r = c.router
    _positive_int(cfg, "cluster.router.session_affinity.virtual_nodes")
    _require(r.session_affinity.key in SESSION_KEYS, "cluster.router.session_affinity.key",
             r.session_affinity.key, f"one of {list(SESSION_KEYS)}")
    # Ranges as the routers' own validators have them (conf/router/*.yaml cites each source).
    p = "cluster.router"
    if "dynamo_kv" in routers:
        _number_in(cfg, f"{p}.dynamo_kv.overlap_score_weight", 0, None, "a non-negative weight")
        _number_in(cfg, f"{p}.dynamo_kv.router_temperature", 0, None, "a non-negative temperature")
        _number_in(cfg, f"{p}.dynamo_kv.router_ttl_secs", 0, None, "a positive number of seconds", low_open=True)
        _positive_int(cfg, f"{p}.dynamo_kv.router_max_tree_size")
        _number_in(cfg, f"{p}.dynamo_kv.router_prune_target_ratio", 0, 1,
                   "a fraction in [0, 1] of router_max_tree_size to prune to")
    if "sglang_cache_aware" in routers:
        # SGLang's ConfigValidator::validate_policy (sgl-router/src/config/validation.rs).
        _number_in(cfg, f"{p}.sglang_cache_aware.cache_threshold", 0, 1, "a fraction in [0, 1]")
        _non_negative_int(cfg, f"{p}.sglang_cache_aware.balance_abs_threshold")
        _number_in(cfg, f"{p}.sglang_cache_aware.balance_rel_threshold", 1, None,
                   "a ratio >= 1.0 (rebalance when the busiest replica has more than this times the "
                   "least busy one's load; SGLang's router refuses less)")
        _number_in(cfg, f"{p}.sglang_cache_aware.eviction_interval_secs", 0, None, "a positive number of seconds",
                   low_open=True)
        _positive_int(cfg, f"{p}.sglang_cache_aware.max_tree_size")
    if "llmd" in routers:
        for k in ("prefix_weight", "kv_cache_utilization_weight", "queue_weight"):
            _number_in(cfg, f"{p}.llmd.{k}", 0, None, "a non-negative weight")
        _non_negative_int(cfg, f"{p}.llmd.lru_capacity_per_server")


def _number_in(cfg: Any, key: str, low: float, high: float | None, allowed: str, low_open: bool = False) -> None:
    value = _get(cfg, key)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
        and (value > low if low_open else value >= low) and (high is None or value <= high)
    _require(ok, key, value, allowed)


def validate(cfg: Any) -> None:
    """Raise ConfigError naming the first key whose value cannot run."""
    validate_top(cfg)
    validate_dataset(cfg)
    validate_engine(cfg)
    for name in cfg.workloads:
        validate_workload(cfg, name)
    validate_sweep(cfg)
    validate_mix(cfg)
    validate_cost(cfg)
    validate_tiers(cfg)
    validate_cluster(cfg)
