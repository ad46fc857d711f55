"""Where every stage's outputs live, computed from one composed config.

The Snakefile and the `prefix-study` command both use `PipelinePaths`, so a
stage's directory is keyed by the hash of the config it depends on
(`config.hashing`) and runs of different configurations share what they can.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefix_study.config.hashing import STAGES, run_dir, stage_dir
from prefix_study.config.schema import EXTERNAL_TRACE_KINDS as EXTERNAL_KINDS
from prefix_study.traces.importers import BLOCK_TOKENS


def split_overrides(value: Any) -> list[str]:
    """Hydra overrides from Snakemake's `--config overrides=...`.

    Accepts a list, or one string such as
    `[sweep.capacities=[64,1024],sweep.policies=[lru]]` or
    `sweep.capacities=[64,1024] sweep.policies=[lru]`: split at commas and
    spaces that are not inside brackets or quotes.
    """
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    text = str(value).strip()
    if text.startswith("[") and text.endswith("]") and "=" in text:
        text = text[1:-1]
    out, depth, quote, cur = [], 0, "", []
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch in ", " and depth == 0:
            if cur:
                out.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    if cur:
        out.append("".join(cur))
    return out


@dataclass(frozen=True)
class PipelinePaths:
    """All output paths of one configuration."""

    cfg: Any

    def stage(self, name: str) -> Path:
        assert name in STAGES, name
        return stage_dir(self.cfg, name)

    @property
    def run(self) -> Path:
        return run_dir(self.cfg)

    def stage_config(self, name: str) -> Path:
        return self.stage(name) / "config.yaml"

    # --- workloads -----------------------------------------------------
    @property
    def engine_workloads(self) -> list[str]:
        """Workloads built from ShareGPT and run through the engine."""
        return [w for w, c in self.cfg.workloads.items() if c.kind not in EXTERNAL_KINDS]

    @property
    def external_workloads(self) -> list[str]:
        return [w for w, c in self.cfg.workloads.items() if c.kind in EXTERNAL_KINDS]

    def workload(self, name: str) -> Path:
        return self.stage("workloads") / f"{name}.parquet"

    # --- engine --------------------------------------------------------
    @property
    def engine_block_sizes(self) -> list[int]:
        return sorted(int(b) for b in self.cfg.engine.block_sizes)

    def engine_dir(self, workload: str, block_size: int) -> Path:
        return self.stage("engine") / workload / f"b{block_size}"

    def engine_source_block_size(self, block_size: int) -> int:
        """The engine run whose token ids a trace at `block_size` is derived from."""
        sizes = self.engine_block_sizes
        return block_size if block_size in sizes else sizes[0]

    # --- traces --------------------------------------------------------
    def sweep_pairs(self) -> list[tuple[str, int]]:
        """(workload, block size) of the statistics and replays: sweep sizes
        for engine workloads, the native block size for external traces."""
        pairs = [(w, int(b)) for w in self.engine_workloads for b in self.cfg.sweep.block_sizes]
        pairs += [(w, BLOCK_TOKENS[self.cfg.workloads[w].kind]) for w in self.external_workloads]
        return sorted(set(pairs))

    def trace_pairs(self) -> list[tuple[str, int]]:
        """Every trace any stage reads (the sweep's, and the mix's block size)."""
        mix_bs = int(self.cfg.mix.block_size)
        return sorted(set(self.sweep_pairs()) | {(w, mix_bs) for w in self.engine_workloads})

    def trace(self, workload: str, block_size: int) -> Path:
        return self.stage("traces") / workload / f"b{block_size}.parquet"

    def trace_check(self, workload: str, block_size: int) -> Path:
        return self.stage("traces") / workload / f"b{block_size}.check.json"

    def mixed_workloads(self) -> list[str]:
        bs = int(self.cfg.mix.block_size)
        return [w for w, b in self.trace_pairs() if b == bs]

    # --- downstream ----------------------------------------------------
    def stats(self, name: str) -> Path:
        return self.stage("stats") / name

    def replay(self, name: str) -> Path:
        return self.stage("replay") / name

    def mixed(self, name: str) -> Path:
        return self.stage("mixed") / name

    def figure(self, name: str) -> Path:
        return self.stage("figures") / f"{name}.png"


FIGURES = {
    "reuse_cdfs": "CDFs of per-request reuse fraction, hits per block and reuse gaps, per workload and block size.",
    "hit_rate_vs_capacity": "Replay hit rate against cache capacity (blocks), per policy, semantics and block size.",
    "mixed_comparison": "Mixed workload: hit rate per workload and overall for baseline LRU/FIFO and workload-aware LRU.",
    "engine_vs_replay": "Engine-measured prefix hit rate (vLLM num_cached_tokens) beside the prefix-semantics LRU replay at the engine's capacity.",
}
