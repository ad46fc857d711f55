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
    ThinkTimeDistribution,
    workload_schema,
)

#: Experiment names become a directory name under results/runs/.
EXPERIMENT_NAME = re.compile(r"(?!\.)[A-Za-z0-9_.-]+")


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
    """True if the file has a non-blank line (reads up to the first one)."""
    with open(path, "rb") as f:
        return any(line.strip() for line in f)


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
    if cfg.sweep.capacity_unit == "gib":  # the unit itself is typed (CapacityUnit)
        caps = list(cfg.sweep.capacities)
        _require(len(caps) > 0 and all(isinstance(c, (int, float)) and not isinstance(c, bool)
                                       and math.isfinite(c) and c > 0 for c in caps),
                 "sweep.capacities", caps, "positive numbers (GiB)")
        _no_duplicates("sweep.capacities", caps)
    else:
        _positive_list(cfg, "sweep.capacities")
    _name_list(cfg, "sweep.policies", sorted(POLICY_REGISTRY.names()))
    _name_list(cfg, "sweep.semantics", list(SEMANTICS))
    _name_list(cfg, "sweep.curve_policies", sorted(POLICY_REGISTRY.names()), empty_ok=True)


def validate_mix(cfg: Any) -> None:
    from prefix_study.config.schema import SEMANTICS
    from prefix_study.registry import POLICY_REGISTRY

    _positive_int(cfg, "mix.burst")
    _positive_int(cfg, "mix.block_size")
    _positive_list(cfg, "mix.capacities")
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


def validate_cluster(cfg: Any) -> None:
    from prefix_study.cluster.caches import cache_names, unsupported_reason
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
    _require(c.policy in cache_names(), "cluster.policy", c.policy,
             f"one of {cache_names()} (policies with an incremental replica cache)"
             + (f"; {reason}" if reason else ""))
    _require(c.capacity_unit in CAPACITY_UNITS, "cluster.capacity_unit", c.capacity_unit,
             f"one of {list(CAPACITY_UNITS)}")
    _require(c.capacity > 0, "cluster.capacity", c.capacity, "a positive capacity")
    _positive_int(cfg, "cluster.max_batch")
    _positive_int(cfg, "cluster.block_size")
    for w in c.workloads:
        _require(w in cfg.workloads, "cluster.workloads", w, f"workloads from {list(cfg.workloads)}")
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
    # Router parameters come from conf/router/*.yaml; a stage config written
    # before the cluster stage existed has none, and needs none.
    if any(OmegaConf.is_missing(r[name], k) for name in ("dynamo_kv", "sglang_cache_aware", "llmd")
           for k in r[name]):
        return
    if "dynamo_kv" in routers:
        _require(r.dynamo_kv.overlap_score_weight >= 0, "cluster.router.dynamo_kv.overlap_score_weight",
                 r.dynamo_kv.overlap_score_weight, "a non-negative weight")
        _require(r.dynamo_kv.router_temperature >= 0, "cluster.router.dynamo_kv.router_temperature",
                 r.dynamo_kv.router_temperature, "a non-negative temperature")
        _require(r.dynamo_kv.router_ttl_secs > 0, "cluster.router.dynamo_kv.router_ttl_secs",
                 r.dynamo_kv.router_ttl_secs, "a positive number of seconds")
    if "sglang_cache_aware" in routers:
        s = r.sglang_cache_aware
        _require(0.0 <= s.cache_threshold <= 1.0, "cluster.router.sglang_cache_aware.cache_threshold",
                 s.cache_threshold, "a fraction in [0, 1]")
        _require(s.balance_abs_threshold >= 0, "cluster.router.sglang_cache_aware.balance_abs_threshold",
                 s.balance_abs_threshold, "a non-negative number of requests")
        _require(s.eviction_interval_secs > 0, "cluster.router.sglang_cache_aware.eviction_interval_secs",
                 s.eviction_interval_secs, "a positive number of seconds")
    if "llmd" in routers:
        for k in ("prefix_weight", "kv_cache_utilization_weight", "queue_weight"):
            _require(r.llmd[k] >= 0, f"cluster.router.llmd.{k}", r.llmd[k], "a non-negative weight")


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


    validate_cluster(cfg)
