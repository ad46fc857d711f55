"""Per-replica capacity in blocks, and the workloads and traces the stage replays
(the Snakefile reads these: no numba, no polars here)."""

from __future__ import annotations

from typing import Any


def capacity_blocks(cfg: Any, block_size: int) -> int:
    """cluster.capacity (in cluster.capacity_unit) as blocks of `block_size` tokens."""
    from prefix_study.cost import ModelProfile, capacity_blocks as convert

    c = cfg.cluster
    unit = str(c.capacity_unit)
    model = ModelProfile.from_config(cfg.model) if unit == "gib" else None
    return int(convert(c.capacity, unit, block_size, model))


def capacity_error(cfg: Any, block_size: int, request_blocks: int, what: str) -> str | None:
    """The message naming cluster.capacity if one replica cannot hold one
    request (vLLM refuses such a pool), else None."""
    cap = capacity_blocks(cfg, block_size)
    if cap >= request_blocks:
        return None
    return (f"cluster.capacity={cfg.cluster.capacity} {cfg.cluster.capacity_unit} is too small for one "
            f"request: {cap} blocks of {block_size} tokens per replica, but {what} needs {request_blocks}")


def selected_workloads(cfg: Any) -> list[str]:
    """The workloads the cluster stage replays (cluster.workloads, or all)."""
    return list(cfg.cluster.workloads) or list(cfg.workloads)


def cluster_traces(cfg: Any) -> list[tuple[str, int]]:
    """(workload, block size) of every trace the stage reads."""
    from prefix_study.config.schema import EXTERNAL_TRACE_KINDS
    from prefix_study.traces.formats import external_block_tokens

    out = []
    for w in selected_workloads(cfg):
        kind = cfg.workloads[w].kind
        out.append((w, external_block_tokens(cfg.workloads[w]) if kind in EXTERNAL_TRACE_KINDS
                    else int(cfg.cluster.block_size)))
    return out
