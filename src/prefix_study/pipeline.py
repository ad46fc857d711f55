"""Where every stage's outputs live, computed from one composed config.

The Snakefile and the `prefix-study` command both use `PipelinePaths`, so a
stage's directory is keyed by the hash of the config it depends on
(`config.hashing`) and runs of different configurations share what they can.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from omegaconf import DictConfig, OmegaConf

from prefix_study.config.hashing import STAGES, capacity_sweep_hash, run_dir, stage_dir
from prefix_study.config.inputs import dataset_file, trace_file
from prefix_study.config.schema import EXTERNAL_TRACE_KINDS as EXTERNAL_KINDS
from prefix_study.config.schema import MIXED_RUN
from prefix_study.traces.formats import external_block_tokens


def run_config(snakemake_config: dict) -> DictConfig:
    """The Snakefile's config from Snakemake's `--config`: the file that
    `prefix-study` composed for this run (`composed=<path>`, see
    `config.resolved`) when it holds these overrides, else composed here
    from `overrides=[...]` (a Snakemake started by hand)."""
    value, composed = snakemake_config.get("overrides"), snakemake_config.get("composed")
    if composed and isinstance(value, list) and Path(composed).is_file():  # no Hydra import
        from prefix_study.config.resolved import load_config

        cfg = load_config(composed)
        if list(cfg.overrides) == [str(v) for v in value]:
            OmegaConf.set_readonly(cfg, True)
            return cfg
    from prefix_study.config.compose import compose_config
    from prefix_study.config.overrides import overrides_from_snakemake

    return compose_config(overrides_from_snakemake(value))


def config_arg(overrides: Sequence[str]) -> str:
    """`overrides=<JSON list>` for Snakemake's `--config` (read back by
    `config.overrides.overrides_from_snakemake`): Snakemake's YAML base loader
    gives back these exact strings.

    Non-ASCII stays as is (no backslash escapes): when a cluster executor
    re-issues `--config` in a job's command line it quotes it with Python's
    repr, which survives the shell only for values without quotes or
    backslashes.
    """
    return "overrides=" + json.dumps([str(o) for o in overrides], ensure_ascii=False)


def composed_arg(path: Path) -> str:
    """`composed=<JSON string>` for Snakemake's `--config`: the run's composed
    config file (`run_config`), quoted like `config_arg`."""
    return "composed=" + json.dumps(str(path), ensure_ascii=False)


@dataclass(frozen=True)
class PipelinePaths:
    """All output paths of one configuration (the rules use nothing else).

    Methods taking a workload or block size also accept Snakemake wildcard
    patterns such as "{workload}" and "{bs}".
    """

    cfg: Any
    #: Stage hashes, computed once per PipelinePaths (its config's files are
    #: read when first asked: a new PipelinePaths sees changed inputs).
    _hashes: dict[str, str] = field(default_factory=dict, init=False, repr=False, compare=False)

    def stage(self, name: str) -> Path:
        assert name in STAGES, name
        return stage_dir(self.cfg, name, self._hashes)

    @property
    def run(self) -> Path:
        return run_dir(self.cfg, self._hashes)

    @property
    def report_html(self) -> Path:
        return self.run / "report.html"

    def stage_config(self, name: str) -> Path:
        return self.stage(name) / "config.yaml"

    @property
    def stage_config_pattern(self) -> str:
        """`stage_config` for the wildcards {stage} and {hash} (rule `stage_config`)."""
        return str(Path(self.cfg.results_dir) / "{stage}" / "{hash}" / "config.yaml")

    def log(self, stage: str, job: str) -> Path:
        return self.stage(stage) / "logs" / f"{job}.log"

    def benchmark(self, stage: str, job: str) -> Path:
        return self.stage(stage) / "benchmarks" / f"{job}.tsv"

    def benchmark_files(self) -> list[Path]:
        """Every benchmark file the stages of this config wrote so far."""
        return [f for s in STAGES for f in sorted((self.stage(s) / "benchmarks").glob("*.tsv"))]

    # --- workloads -----------------------------------------------------
    @property
    def engine_workloads(self) -> list[str]:
        """Workloads built from ShareGPT and run through the engine."""
        return [w for w, c in self.cfg.workloads.items() if c.kind not in EXTERNAL_KINDS]

    @property
    def external_workloads(self) -> list[str]:
        return [w for w, c in self.cfg.workloads.items() if c.kind in EXTERNAL_KINDS]

    def external_block_size(self, workload: str) -> int:
        """The block size in tokens of an external trace (its `block_tokens`, else its format's)."""
        return external_block_tokens(self.cfg.workloads[workload])

    # --- input files (their checksums are in the stage hashes) ----------
    @property
    def dataset_file(self) -> Path:
        """The ShareGPT file the workloads stage reads."""
        return dataset_file(self.cfg)

    def trace_file(self, workload: str) -> Path:
        """The file an external trace workload is imported from."""
        return trace_file(self.cfg, workload)

    def workload_stream(self, name: str) -> Path:
        return self.stage("workloads") / f"{name}.parquet"

    def workload_summary(self, name: str) -> Path:
        return self.stage("workloads") / f"{name}.summary.json"

    @property
    def model_dir(self) -> Path:
        return self.stage("assets") / "model"

    # --- engine --------------------------------------------------------
    @property
    def engine_block_sizes(self) -> list[int]:
        return sorted(int(b) for b in self.cfg.engine.block_sizes)

    def engine_pairs(self) -> list[tuple[str, int]]:
        """(workload, block size) of every engine run."""
        return [(w, b) for w in self.engine_workloads for b in self.engine_block_sizes]

    def engine_dir(self, workload: str, block_size: int | str) -> Path:
        return self.stage("engine") / workload / f"b{block_size}"

    def engine_file(self, workload: str, block_size: int | str, name: str) -> Path:
        """`requests.parquet`, `kv_events.parquet` or `run.json` of one engine run."""
        return self.engine_dir(workload, block_size) / name

    def engine_no_cache_dir(self, workload: str, block_size: int | str) -> Path:
        """An engine run with prefix caching off (the engine TTFT comparison's baseline)."""
        return self.stage("engine") / "no_prefix_caching" / workload / f"b{block_size}"

    @property
    def engine_capacities(self) -> list[int]:
        """The engine capacity sweep (blocks), without the trace-source capacity."""
        source = int(self.cfg.engine.capacity_blocks)
        return sorted({int(c) for c in self.cfg.engine.capacities} - {source})

    def engine_capacity_root(self, capacity: int | str) -> Path:
        """Keyed by what the sweep's runs alone depend on (`capacity_sweep_hash`)."""
        return self.stage("engine") / "capacity" / capacity_sweep_hash(self.cfg) / f"c{capacity}"

    def engine_capacity_dir(self, run: str, block_size: int | str, capacity: int | str) -> Path:
        """One engine run of the capacity sweep (`run`: a workload or `mixed`)."""
        return self.engine_capacity_root(capacity) / run / f"b{block_size}"

    def engine_source_block_size(self, block_size: int) -> int:
        """The engine run whose token ids a trace at `block_size` is derived from."""
        sizes = self.engine_block_sizes
        return block_size if block_size in sizes else sizes[0]

    # --- traces --------------------------------------------------------
    def sweep_pairs(self) -> list[tuple[str, int]]:
        """(workload, block size) of the statistics and replays: sweep sizes
        for engine workloads, the native block size for external traces."""
        pairs = [(w, int(b)) for w in self.engine_workloads for b in self.cfg.sweep.block_sizes]
        pairs += [(w, self.external_block_size(w)) for w in self.external_workloads]
        return sorted(set(pairs))

    def trace_pairs(self) -> list[tuple[str, int]]:
        """Every trace any stage reads (the sweep's, the mix's block size, the engine's)."""
        mix_bs = int(self.cfg.mix.block_size)
        return sorted(set(self.sweep_pairs()) | {(w, mix_bs) for w in self.engine_workloads}
                      | set(self.engine_pairs()))

    def trace(self, workload: str, block_size: int | str) -> Path:
        return self.stage("traces") / workload / f"b{block_size}.parquet"

    def trace_check(self, workload: str, block_size: int | str) -> Path:
        return self.stage("traces") / workload / f"b{block_size}.check.json"

    def engine_capacity_trace(self, run: str, block_size: int | str, capacity: int | str) -> Path:
        """The block trace of one engine capacity-sweep run (`.check.json` beside it)."""
        return (self.stage("traces") / "capacity" / capacity_sweep_hash(self.cfg) / f"c{capacity}" / run
                / f"b{block_size}.parquet")

    def engine_runs(self) -> list[tuple[str, int, int]]:
        """(run, block size, capacity blocks) of every engine run: the workloads at
        `engine.capacity_blocks`, then the capacity sweep's workloads and mixed run."""
        source = int(self.cfg.engine.capacity_blocks)
        runs = [(w, b, source) for w, b in self.engine_pairs()]
        return runs + [(r, b, c) for c in self.engine_capacities for b in self.engine_block_sizes
                       for r in self.engine_workloads + [MIXED_RUN]]

    def engine_run_dir(self, run: str, block_size: int | str, capacity: int | str) -> Path:
        if int(capacity) == int(self.cfg.engine.capacity_blocks):
            return self.engine_dir(run, block_size)
        return self.engine_capacity_dir(run, block_size, capacity)

    def engine_run_trace(self, run: str, block_size: int | str, capacity: int | str) -> Path:
        if int(capacity) == int(self.cfg.engine.capacity_blocks):
            return self.trace(run, block_size)
        return self.engine_capacity_trace(run, block_size, capacity)

    def trace_blocks(self, workload: str, block_size: int | str) -> Path:
        """Per-block records of an engine run (engine block sizes only)."""
        return self.stage("traces") / workload / f"b{block_size}.blocks.parquet"

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

    def savings(self, name: str) -> Path:
        return self.stage("savings") / name

    def cluster(self, name: str) -> Path:
        return self.stage("cluster") / name

    @property
    def tiers_run(self) -> bool:
        """Whether the tiers stage runs (a tier below GPU memory is configured)."""
        from prefix_study.tiers.spec import has_lower_tiers

        return has_lower_tiers(self.cfg.tiers)

    @property
    def stages_run(self) -> list[str]:
        """The stages this config runs (every stage, but tiers only with tiers below GPU memory)."""
        return [s for s in STAGES if s != "tiers" or self.tiers_run]

    def tiers(self, name: str) -> Path:
        return self.stage("tiers") / name

    def figure(self, name: str) -> Path:
        """figures/<name>.png (its .svg beside it): every figure of the run."""
        return self.stage("figures") / f"{name}.png"
