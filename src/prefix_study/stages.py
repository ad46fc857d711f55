"""The one entry the Snakemake rules call: a `Job` per rule, run by its stage.

Every stage rule runs `workflow/scripts/stage.py` (Snakemake's `script:`
directive), which hands the rule's named inputs, outputs, parameters and
wildcards to `run_job` as one `Job`. No shell line is built from config
values or paths, and no path is parsed back from a string: mappings such as
{(workload, block size): trace} travel as Python objects in the rule's
`params` (built from the same dicts that name the rule's inputs).

Each runner reads the resolved config its rule wrote into the stage
directory (`input.cfg`), takes the typed parts the stage needs and calls the
stage's one entry, `prefix_study.<stage>.stage.run`, with explicit
arguments.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping


@dataclass(frozen=True)
class Job:
    """What one rule hands its stage: named inputs and outputs (paths),
    parameters (Python objects) and wildcards."""

    stage: str
    input: Mapping[str, Any]
    output: Mapping[str, Any]
    params: Mapping[str, Any] = field(default_factory=dict)
    wildcards: Mapping[str, str] = field(default_factory=dict)
    log: str | None = None

    @classmethod
    def from_snakemake(cls, smk: Any) -> "Job":
        """From the `snakemake` object of a `script:` job (named items only)."""
        named = lambda items: {k: v for k, v in items.items()}  # noqa: E731
        params = named(smk.params)
        return cls(stage=params.pop("stage"), input=named(smk.input), output=named(smk.output),
                   params=params, wildcards=named(smk.wildcards), log=smk.log[0] if smk.log else None)

    @property
    def cfg(self) -> Any:
        """The stage directory's resolved config (`input.cfg`)."""
        from prefix_study.config.resolved import load_config

        return load_config(self.input["cfg"])


def assets(job: Job) -> None:
    from prefix_study.assets.stage import run

    run(job.cfg.engine.model, job.output["model"])


def workloads(job: Job) -> None:
    from prefix_study.workloads.stage import run

    run(job.cfg, job.wildcards["workload"], job.output["stream"], job.output["summary"])


def engine(job: Job) -> None:
    """params: streams {run name: request stream}, block_size, out_root or
    out_dirs {run name: directory}; optional capacity, mixed, prefix_caching,
    only (the one run of the capacity sweep to make, engine.fan_out=workload)."""
    from prefix_study.cost import CostModel
    from prefix_study.engine.stage import run

    cfg, p = job.cfg, job.params
    cost = CostModel.from_config(cfg) if cfg.engine.clock == "cost_model" else None
    engine_cfg = cfg.engine
    if not p.get("prefix_caching", True):  # the engine stage's TTFT baselines
        from omegaconf import OmegaConf

        engine_cfg = OmegaConf.merge(cfg.engine, {"prefix_caching": False})
    out_dirs = p.get("out_dirs")
    run(engine_cfg, p["streams"], job.input["model"], int(p["block_size"]),
        p.get("out_root") or next(iter(out_dirs.values())), capacity_blocks=p.get("capacity"),
        mixed=bool(p.get("mixed", False)), progress=True, cost=cost, out_dirs=out_dirs, mix_cfg=cfg.mix,
        only=p.get("only"))


def traces(job: Job) -> None:
    """params: run (a workload, or the capacity sweep's mixed run), block_size, engine_dir or None."""
    from prefix_study.traces.stage import run

    cfg, p = job.cfg, job.params
    check = job.output["check"]
    # The engine capacity sweep's mixed run is no configured workload.
    report = run(p["run"], cfg.workloads.get(p["run"]), int(p["block_size"]), p.get("engine_dir"),
                 job.output["trace"], check, job.output.get("blocks"))
    if not report.get("ok", True):
        sys.exit(f"trace check failed for {p['run']} b{p['block_size']}: see {check}")


def stats(job: Job) -> None:
    from prefix_study.stats.stage import run

    run(job.params["traces"], job.output["summary"], job.output["md"], job.output["cdfs"])


def replay(job: Job) -> None:
    """params: traces and engine_traces {(workload, bs): trace}, engine_requests
    {(workload, bs): requests.parquet}, engine_runs [(run, bs, capacity,
    engine run directory, its trace)]."""
    from prefix_study.cost import CostModel, ModelProfile
    from prefix_study.replay.engine_sweep import EngineRunFiles
    from prefix_study.replay.stage import ReplayOutputs, run

    cfg, p, o = job.cfg, job.params, job.output
    runs = [EngineRunFiles(r, int(b), int(c), Path(d), Path(t)) for r, b, c, d, t in p["engine_runs"]]
    run(p["traces"], cfg.sweep, ReplayOutputs(**{k: o[k] for k in ReplayOutputs.__dataclass_fields__}),
        p["engine_traces"], int(cfg.engine.capacity_blocks), ModelProfile.from_config(cfg.model),
        cost_model=CostModel.from_config(cfg), engine_runs=runs, engine_requests_paths=p["engine_requests"])


def mixed(job: Job) -> None:
    """params: traces {workload: trace at mix.block_size}, in mixing order."""
    from prefix_study.cost import CostModel, ModelProfile
    from prefix_study.mixed.stage import run

    cfg = job.cfg
    run(job.params["traces"], cfg.mix, cfg.workloads, job.output["table"], job.output["md"],
        ModelProfile.from_config(cfg.model), CostModel.from_config(cfg), job.output["per_request"])


def figures(job: Job) -> None:
    from prefix_study.figures.stage import FigureInputs, run

    i = job.input
    run(FigureInputs(**{k: i.get(k) for k in FigureInputs.__dataclass_fields__}), job.cfg,
        Path(job.params["out_dir"]))


def savings(job: Job) -> None:
    """params: streams {workload: request stream}; engine and engine_no_cache
    {workload: engine run directory} (the TTFT comparison, may be empty)."""
    from prefix_study.savings.stage import run

    p, i = job.params, job.input
    run(job.cfg, p["streams"], i["hit_rates"], i["per_request"], i["mixed_per_request"], Path(p["out_dir"]),
        p["engine"], p["engine_no_cache"])


def cluster(job: Job) -> None:
    """params: traces {workload: trace}, engine_requests {workload: requests.parquet}."""
    from prefix_study.cluster.stage import run

    run(job.cfg, job.params["traces"], job.params["engine_requests"], job.output["table"], job.output["md"],
        progress=False)


def tiers(job: Job) -> None:
    """params: traces {workload: trace at mix.block_size}, external {imported
    trace: trace}, streams {ShareGPT workload: request stream}, out_dir."""
    from prefix_study.tiers.stage import run

    p = job.params
    run(job.cfg, p["traces"], p["external"], p["streams"], Path(p["out_dir"]), progress=True)


#: Stage -> runner (every stage of config.hashing.STAGES has one).
RUNNERS: dict[str, Callable[[Job], None]] = {
    "assets": assets, "workloads": workloads, "engine": engine, "traces": traces, "stats": stats,
    "replay": replay, "mixed": mixed, "figures": figures, "savings": savings, "cluster": cluster,
    "tiers": tiers,
}


@contextmanager
def logged_to(path: str | None) -> Iterator[None]:
    """stdout and stderr (of this process and its children) into the job's log."""
    if path is None:
        yield
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "w") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def run_job(job: Job) -> None:
    """Run one job; its output (tracebacks included) goes to its log."""
    with logged_to(job.log):
        try:
            RUNNERS[job.stage](job)
        except BaseException:
            import traceback

            traceback.print_exc()
            raise
