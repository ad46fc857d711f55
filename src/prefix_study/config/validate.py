"""Value checks that a typed schema cannot express, run before any work."""

from __future__ import annotations

from typing import Any

from prefix_study.config.schema import (
    CLOCKS,
    EXTERNAL_TRACE_KINDS,
    ENGINE_BLOCK_SIZE_MULTIPLE,
    MIX_PATTERNS,
    MODEL_SHAPES,
    SEMANTICS,
    SIMULATOR_MODES,
    THINK_TIME_DISTRIBUTIONS,
    WORKLOAD_KINDS,
)


class ConfigError(ValueError):
    """A configuration key has a value the pipeline cannot run."""


def _get(cfg: Any, key: str) -> Any:
    node = cfg
    for part in key.split("."):
        node = node[part]
    return node


def _require(ok: bool, key: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"{key}={value!r} is invalid: allowed {allowed}")


def _positive_int(cfg: Any, key: str) -> None:
    value = _get(cfg, key)
    _require(isinstance(value, int) and value > 0, key, value, "a positive integer")


def _one_of(cfg: Any, key: str, allowed: tuple[str, ...]) -> None:
    value = _get(cfg, key)
    _require(value in allowed, key, value, f"one of {list(allowed)}")


def _positive_list(cfg: Any, key: str) -> None:
    values = list(_get(cfg, key))
    _require(len(values) > 0, key, values, "a non-empty list")
    for v in values:
        _require(isinstance(v, int) and v > 0, key, values, "positive integers")


def validate_engine(cfg: Any) -> None:
    for key in ("capacity_blocks", "max_model_len", "max_num_seqs", "max_num_batched_tokens"):
        _positive_int(cfg, f"engine.{key}")
    _positive_list(cfg, "engine.block_sizes")
    for bs in cfg.engine.block_sizes:
        _require(
            bs % ENGINE_BLOCK_SIZE_MULTIPLE == 0,
            "engine.block_sizes",
            list(cfg.engine.block_sizes),
            f"multiples of {ENGINE_BLOCK_SIZE_MULTIPLE} (vLLM's CPU attention backend); "
            "smaller block sizes are derived in sweep.block_sizes",
        )
    _one_of(cfg, "engine.simulator", SIMULATOR_MODES)
    _one_of(cfg, "engine.clock", CLOCKS)
    for key in ("step_overhead_s", "token_time_s"):
        value = cfg.engine[key]
        _require(value >= 0, f"engine.{key}", value, "a non-negative number of seconds")
    _one_of(cfg, "engine.model.shape", MODEL_SHAPES)
    _require(
        cfg.engine.max_model_len <= cfg.engine.model.n_positions,
        "engine.max_model_len",
        cfg.engine.max_model_len,
        f"at most engine.model.n_positions ({cfg.engine.model.n_positions})",
    )


def validate_workload(cfg: Any, name: str) -> None:
    key = f"workloads.{name}"
    _one_of(cfg, f"{key}.kind", WORKLOAD_KINDS)
    for field in ("num_conversations", "max_turns", "max_prompt_tokens", "max_reply_tokens",
                  "context_tokens", "num_contexts", "max_question_tokens", "min_document_tokens"):
        _positive_int(cfg, f"{key}.{field}")
    rate = _get(cfg, f"{key}.arrival_rate")
    _require(rate > 0, f"{key}.arrival_rate", rate, "a positive rate (per second)")
    _one_of(cfg, f"{key}.think_time.distribution", THINK_TIME_DISTRIBUTIONS)
    mean = _get(cfg, f"{key}.think_time.mean_s")
    _require(mean >= 0, f"{key}.think_time.mean_s", mean, "a non-negative number of seconds")
    wl = _get(cfg, key)
    if wl.kind in EXTERNAL_TRACE_KINDS:
        _require(wl.trace_path is not None, f"{key}.trace_path", None, "a JSONL file path")


def validate_sweep(cfg: Any) -> None:
    from prefix_study.replay.policies import policy_names

    _positive_list(cfg, "sweep.block_sizes")
    _positive_list(cfg, "sweep.capacities")
    names = policy_names()
    policies = list(cfg.sweep.policies)
    _require(len(policies) > 0, "sweep.policies", policies, f"a non-empty list of {names}")
    for p in policies:
        _require(p in names, "sweep.policies", p, f"policies from {names}")
    for s in cfg.sweep.semantics:
        _require(s in SEMANTICS, "sweep.semantics", s, f"values from {list(SEMANTICS)}")


def validate_mix(cfg: Any) -> None:
    from prefix_study.replay.policies import policy_names

    _one_of(cfg, "mix.pattern", MIX_PATTERNS)
    _positive_int(cfg, "mix.burst")
    _positive_int(cfg, "mix.block_size")
    _positive_list(cfg, "mix.capacities")
    for p in cfg.mix.baselines:
        _require(p in policy_names(), "mix.baselines", p, f"policies from {policy_names()}")
    for w in cfg.mix.cache_friendly:
        _require(w in cfg.workloads, "mix.cache_friendly", w, f"workloads from {list(cfg.workloads)}")
    t = cfg.mix.friendly_threshold
    _require(0.0 <= t <= 1.0, "mix.friendly_threshold", t, "a fraction in [0, 1]")


def validate(cfg: Any) -> None:
    """Raise ConfigError naming the first key whose value cannot run."""
    _require(len(cfg.workloads) > 0, "workloads", dict(cfg.workloads), "at least one workload")
    _positive_int(cfg, "dataset.max_conversations")
    validate_engine(cfg)
    for name in cfg.workloads:
        validate_workload(cfg, name)
    validate_sweep(cfg)
    validate_mix(cfg)
