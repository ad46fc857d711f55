"""Replay stage (rule `replay`): the sweep's hit rates and per-request hits,
the hit-rate curves, and every engine-versus-replay check: the prefix LRU
replay at the engine's capacity beside what vLLM served (engine_vs_replay),
and every engine run beside its batched and sequential replays
(engine_sweep)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import polars as pl

from prefix_study.config.schema import SweepConfig
from prefix_study.cost.model import CostModel
from prefix_study.cost.profiles import ModelProfile
from prefix_study.io import markdown_table, write_parquet, write_text
from prefix_study.replay.curves import write_curves
from prefix_study.replay.engine_capacity import engine_capacity_table, engine_requests, engine_vs_replay
from prefix_study.replay.engine_sweep import EngineRunFiles, engine_sweep_markdown, engine_sweep_table
from prefix_study.replay.sweep import write_hit_rates


@dataclass(frozen=True)
class ReplayOutputs:
    """The files the replay stage writes (the rule's named outputs)."""

    table: str | Path               # hit_rates.parquet
    md: str | Path                  # hit_rates.md
    per_request: str | Path         # per_request.parquet: prefix replays' hits per request
    curves: str | Path              # curves.parquet
    engine_capacity: str | Path     # engine_capacity.parquet
    engine_vs_replay: str | Path    # engine_vs_replay.parquet
    engine_vs_replay_md: str | Path
    engine_sweep: str | Path        # engine_sweep.parquet
    engine_sweep_md: str | Path


def run(traces: Mapping[tuple[str, int], str | Path], sweep_cfg: SweepConfig, out: ReplayOutputs,
        engine_traces: Mapping[tuple[str, int], str | Path], engine_capacity_blocks: int,
        model: ModelProfile | None = None, cost_model: CostModel | None = None,
        engine_runs: Sequence[EngineRunFiles] = (),
        engine_requests_paths: Mapping[tuple[str, int], str | Path] | None = None) -> pl.DataFrame:
    """traces: {(workload, block_size): path} of the sweep; engine_traces: the
    same at the engine's block sizes, engine_requests_paths: their engine
    runs' requests.parquet. model: the named model whose KV bytes turn
    capacities into GiB (`capacity_gib`) and GiB capacities into blocks.
    cost_model (the config's model, hardware and cost sections): recompute
    costs of cost-aware policies (cost_lru; simulate.recompute_cost), else a
    position-linear stand-in. engine_runs: every engine run, compared with
    its batched and sequential replays (replay/engine_sweep.py)."""
    table = write_hit_rates(traces, sweep_cfg, out.table, out.md, model, cost_model, out.per_request)
    write_curves(traces, sweep_cfg, out.curves, table, cost_model)
    replays = engine_capacity_table(engine_traces, engine_capacity_blocks)
    write_parquet(replays, out.engine_capacity)
    versus = engine_vs_replay(engine_requests(engine_requests_paths or {}), replays)
    write_parquet(versus, out.engine_vs_replay)
    capacities = sorted(replays["engine_capacity_blocks"].unique().to_list())
    write_text("# Engine vs prefix replay\n\nToken hit rates: vLLM's `num_cached_tokens` / prompt "
               f"tokens, and the prefix-semantics LRU replay at the engine capacity "
               f"({', '.join(map(str, capacities))} blocks) x block size / prompt tokens.\n\n"
               + markdown_table(versus), out.engine_vs_replay_md)
    sweep = engine_sweep_table(engine_runs)
    write_parquet(sweep, out.engine_sweep)
    write_text("# Engine vs batched vs sequential replay\n\nToken hit rates per engine run: "
               "vLLM's `num_cached_tokens`, vLLM's block pool replayed along the engine's "
               "schedule, and the one-request-at-a-time prefix LRU replay at capacity - 1; "
               "in brackets the requests whose cached tokens differ from vLLM's (batched, "
               "sequential) of all requests, and the preempted requests.\n\n"
               + engine_sweep_markdown(sweep), out.engine_sweep_md)
    return table
