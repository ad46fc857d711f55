"""The whole DAG through the `prefix-study` command, on a tiny configuration.

One session-scoped run (`tiny_run` in conftest.py) builds every stage, real
CPU vLLM engine and an engine capacity sweep included, into a temporary
results directory; the other tests read it or dry-run against it, and a test
that runs jobs extends its own copy (`tiny_copy`). The command runs in the
test's process (pipeline_run.prefix_study); its Snakemake is a new process.
Nothing here skips: without vLLM the engine jobs fail and so do these tests.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml

from pipeline_run import ROOT, TINY, UPSTREAM_RULES, job_stats, prefix_study, run_dirs

from prefix_study.cli import config_arg, expand_overrides, snakemake_command
from prefix_study.config.compose import compose_config
from prefix_study.config.hashing import STAGES, run_hash
from prefix_study.config.overrides import overrides_from_snakemake
from prefix_study.pipeline import PipelinePaths, composed_arg

#: Runs the `prefix-study` command (Snakemake); the tests on the shared run
#: of the whole DAG (conftest.tiny_run) are also marked `engine` (it starts vLLM).
pipeline = pytest.mark.pipeline


# --- the command's pieces, without Snakemake ---------------------------------------


@pytest.mark.parametrize("overrides", [
    ["sweep.capacities=[64,1024]", "sweep.policies=[lru]"],
    ["results_dir=/tmp/a b/results", "x='a,b'", 'y="q\\"z"', "+z=[1, 2]", "w={a: 1}", "ünï=cödé"],
    [],
])
def test_overrides_round_trip_through_snakemake_config(overrides):
    """What `--config overrides=...` hands the Snakefile is exactly the override list."""
    from snakemake.cli import parse_config

    config = parse_config([config_arg(overrides)])
    assert overrides_from_snakemake(config["overrides"]) == overrides


def test_overrides_survive_a_cluster_jobs_command_line():
    """Remote executors re-issue --config in each job's shell command (Python-repr quoted)."""
    import shlex

    from snakemake.cli import parse_config
    from snakemake_interface_executor_plugins.utils import format_cli_arg

    overrides = [*TINY, "results_dir=/scratch/my results/r1", "sweep.policies=[lru,fifo]", "seed=ünï"]
    composed = Path("/scratch/my project/.snakemake/prefix-study/configs/ab12.yaml")
    argv = shlex.split(format_cli_arg("--config", [config_arg(overrides), composed_arg(composed)]))
    assert argv[0] == "--config"
    config = parse_config(argv[1:])
    assert overrides_from_snakemake(config["overrides"]) == overrides
    assert config["composed"] == str(composed)


def test_multirun_expands_like_hydras_basic_sweeper():
    combos = expand_overrides(["sweep.block_sizes=[16],[32,64]", "sweep.policies=[lru],[lru,fifo]", "seed=1"],
                              multirun=True)
    assert combos == [
        ["sweep.block_sizes=[16]", "sweep.policies=[lru]", "seed=1"],
        ["sweep.block_sizes=[16]", "sweep.policies=[lru,fifo]", "seed=1"],
        ["sweep.block_sizes=[32,64]", "sweep.policies=[lru]", "seed=1"],
        ["sweep.block_sizes=[32,64]", "sweep.policies=[lru,fifo]", "seed=1"],
    ]
    # A list is one value, not a sweep; without -m nothing is expanded.
    assert expand_overrides(["sweep.block_sizes=[32,64]"], multirun=True) == [["sweep.block_sizes=[32,64]"]]
    assert expand_overrides(["sweep.block_sizes=[32,64]"], multirun=False) == [["sweep.block_sizes=[32,64]"]]


def test_snakemake_command(monkeypatch):
    monkeypatch.delenv("SNAKEMAKE_PROFILE", raising=False)
    cmd = snakemake_command(["sweep=tiny"], None, True, ["--forcerun", "replay", "all"], ROOT)
    assert cmd[:3] == [sys.executable, "-m", "snakemake"]
    assert cmd[3:8] == ["--profile", str(ROOT / "workflow/profiles/local"), "--cores", "2", "--dry-run"]
    # --config takes many values: last, so the target "all" is not read as one.
    assert cmd[-4:] == ["replay", "all", "--config", 'overrides=["sweep=tiny"]']
    composed = ROOT / ".snakemake" / "prefix-study" / "configs" / "ab12.yaml"
    with_file = snakemake_command(["sweep=tiny"], None, True, ["all"], ROOT, composed)
    assert with_file[-4:] == ["all", "--config", 'overrides=["sweep=tiny"]', f'composed="{composed}"']
    slurm = snakemake_command([], None, False, ["--profile", "workflow/profiles/slurm"], ROOT)
    assert "--cores" not in slurm and str(ROOT / "workflow/profiles/local") not in slurm
    assert snakemake_command([], 4, False, ["--executor", "slurm"], ROOT)[3:5] == ["--cores", "4"]


@pipeline
def test_show_config_and_print_run_dir(tmp_path):
    results = tmp_path / "results"
    overrides = [*TINY, f"results_dir={results}", "sweep.capacities=[64,1024]"]
    shown = prefix_study("--show-config", *overrides)
    assert shown.returncode == 0
    cfg = yaml.safe_load(shown.stdout)
    assert cfg["sweep"]["capacities"] == [64, 1024]
    assert cfg["results_dir"] == str(results)
    printed = prefix_study("--print-run-dir", *overrides)
    assert printed.returncode == 0
    expected = results / "runs" / f"default-{run_hash(compose_config(overrides))}"
    assert printed.stdout.strip() == str(expected)
    assert not results.exists()


@pipeline
def test_project_found_from_any_directory(tmp_path):
    """Outside the checkout the command still finds its Snakefile; results_dir is relative to it."""
    proc = prefix_study("--print-run-dir", "sweep=tiny", cwd=tmp_path)
    assert proc.returncode == 0
    assert Path(proc.stdout.strip()).parent == ROOT / "results" / "runs"
    other = tmp_path / "elsewhere"
    assert prefix_study("--directory", str(other), "--print-run-dir", cwd=tmp_path).returncode == 2


@pipeline
def test_sweep_without_multirun_is_refused(tmp_path):
    proc = prefix_study(*TINY, f"results_dir={tmp_path / 'results'}", "sweep.capacities=[64],[128]")
    assert proc.returncode == 2
    assert "sweep.capacities" in proc.stderr and "--multirun" in proc.stderr
    assert not (tmp_path / "results").exists()


@pipeline
@pytest.mark.parametrize("override, key", [
    ("no_such_key=1", "no_such_key"),
    ("sweep.colour=red", "sweep.colour"),
    ("sweep.capacities=abc", "sweep.capacities"),
    ("workloads.qa.num_contexts=many", "workloads.qa.num_contexts"),
    ("sweep.block_sizes=[0]", "sweep.block_sizes"),
    ("engine.block_sizes=[0]", "engine.block_sizes"),
    ("sweep.policies=[lru,mru_magic]", "sweep.policies"),
])
def test_invalid_override_fails_before_any_job(tmp_path, override, key):
    results = tmp_path / "results"
    proc = prefix_study(*TINY, f"results_dir={results}", override)
    assert proc.returncode == 2
    assert key in proc.stderr
    assert "snakemake" not in proc.stdout.lower() and "Job stats" not in proc.stderr
    assert not results.exists()


@pipeline
def test_invalid_combination_stops_the_whole_sweep(tmp_path):
    """All combinations are validated before any runs: a bad last one stops the first."""
    results = tmp_path / "results"
    proc = prefix_study("-m", *TINY, f"results_dir={results}", "sweep.policies=[lru],[mru_magic]")
    assert proc.returncode == 2
    assert "sweep.policies" in proc.stderr and "mru_magic" in proc.stderr
    assert "run directory" not in proc.stdout
    assert not results.exists()


@pipeline
@pytest.mark.parametrize("profile", ["local", "slurm"])
def test_profile_dry_run_lists_every_job(tmp_path, profile, monkeypatch):
    """Plans the full DAG through a profile; the SLURM one needs no sbatch for -n,
    and takes the partition from SLURM_PARTITION."""
    monkeypatch.setenv("SLURM_PARTITION", "short")
    monkeypatch.delenv("SLURM_ACCOUNT", raising=False)
    results = tmp_path / "results"
    proc = prefix_study("-n", *TINY, f"results_dir={results}", "--",
                        "--profile", f"workflow/profiles/{profile}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    stats = job_stats(proc.stdout + proc.stderr)
    # engine block size 32 (sweep=tiny: 32) -> each trace also writes its engine run's per-block records
    # One engine job per engine block size runs all four workloads.
    assert stats["engine_run"] == 1 and stats["workload"] == 4 and stats["engine_block_trace"] == 4
    assert "block_trace" not in stats and "engine_capacity_run" not in stats
    assert stats["assets"] == stats["replay"] == stats["mixed"] == stats["figures"] == 1
    assert stats["run_index"] == stats["report_html"] == 1
    if profile == "slurm":
        assert "slurm_partition=short" in proc.stderr + proc.stdout
        assert "slurm_account" not in proc.stderr + proc.stdout  # SLURM_ACCOUNT unset: none
        # The engine's own resources beat the profile's defaults.
        engine_block = (proc.stdout + proc.stderr).split("rule engine_run:", 1)[1].split("\n\n", 1)[0]
        assert "mem_mb=8000" in engine_block and "runtime=120" in engine_block
    assert not results.exists()


@pipeline
def test_engine_capacity_sweep_plans_one_job_per_capacity_and_block_size(tmp_path):
    results = tmp_path / "results"
    proc = prefix_study("-n", *TINY, f"results_dir={results}", "engine.capacities=[65,129]",
                        "engine.max_model_len=2048", "engine.block_sizes=[32,64]")
    assert proc.returncode == 0, proc.stderr[-3000:]
    stats = job_stats(proc.stdout + proc.stderr)
    assert stats["engine_capacity_run"] == 4 and stats["engine_run"] == 2
    assert "cap=129" in proc.stdout + proc.stderr


@pipeline
def test_engine_fan_out_plans_one_job_per_workload(tmp_path):
    """engine.fan_out=workload: one engine job per workload x block size (x capacity,
    and the capacity sweep's mixed run), for a cluster to spread."""
    results = tmp_path / "results"
    proc = prefix_study("-n", *TINY, f"results_dir={results}", "engine.capacities=[65,129]",
                        "engine.max_model_len=2048", "engine.block_sizes=[32,64]", "engine.fan_out=workload")
    assert proc.returncode == 0, proc.stderr[-3000:]
    stats = job_stats(proc.stdout + proc.stderr)
    assert stats["engine_workload_run"] == 4 * 2 and stats["engine_capacity_workload_run"] == 2 * 2 * 5
    assert "engine_run" not in stats and "engine_capacity_run" not in stats
    assert "cap=129" in proc.stdout + proc.stderr and "run=mixed" in proc.stdout + proc.stderr


# --- the full DAG ---------------------------------------------------------------------


@pytest.mark.pipeline
@pytest.mark.engine
def test_full_run_outputs_and_nothing_left_to_do(tiny_run):
    overrides, results, run = tiny_run
    assert run.parent == results / "runs" and " " in results.name  # a results_dir with a space works
    for name in ("index.md", "config.yaml", "stage_times.csv", "report.html"):
        assert (run / name).stat().st_size > 0
    assert yaml.safe_load((run / "config.yaml").read_text())["sweep"]["capacities"] == [64, 256]

    proc = prefix_study("-n", *overrides)
    assert proc.returncode == 0
    assert job_stats(proc.stdout + proc.stderr) == {}


@pytest.mark.pipeline
@pytest.mark.engine
def test_capacity_change_reruns_only_replay_and_downstream(tiny_run):
    """A new sweep.capacities re-plans replay, figures, savings (it replays the
    sweep per request) and the run index only. The mixed stage reads
    mix.capacities, not sweep.capacities, so it is not re-run."""
    overrides, _, _ = tiny_run
    proc = prefix_study("-n", *overrides, "sweep.capacities=[64,512]")
    assert proc.returncode == 0
    stats = job_stats(proc.stdout + proc.stderr)
    assert stats == {"stage_config": 3, "replay": 1, "figures": 1, "savings": 1, "run_index": 1,
                     "report_html": 1, "all": 1}
    assert not UPSTREAM_RULES & set(stats)
    assert "mixed" not in stats and "stats" not in stats


@pytest.mark.pipeline
@pytest.mark.engine
def test_multirun_sweep_shares_upstream_outputs(tiny_copy):
    overrides, results, first_run = tiny_copy
    upstream = sorted(p for stage in ("assets", "workloads", "engine", "traces", "stats", "mixed")
                      for p in (results / stage).rglob("*") if p.is_file())
    before = {p: p.stat().st_mtime_ns for p in upstream}

    proc = prefix_study("-m", *overrides, "sweep.capacities=[64],[128]")
    assert proc.returncode == 0, proc.stderr[-5000:]
    runs = [r if r.is_absolute() else ROOT / r for r in run_dirs(proc.stdout)]
    assert len(runs) == 2 and len(set(runs)) == 2 and first_run not in runs
    hashes = {r.name.rsplit("-", 1)[1] for r in runs}
    assert len(hashes) == 2
    for run, caps in zip(runs, ([64], [128])):
        assert (run / "index.md").stat().st_size > 0
        assert (run / "report.html").stat().st_size > 0
        assert yaml.safe_load((run / "config.yaml").read_text())["sweep"]["capacities"] == caps
    # Upstream stages were reused, not rebuilt: same directories, untouched files.
    assert {p: p.stat().st_mtime_ns for p in upstream} == before
    for stage in ("assets", "workloads", "engine", "traces", "stats", "mixed"):
        assert len(list((results / stage).iterdir())) == 1, stage
    assert {p.name for p in (results / "runs").iterdir()} >= {first_run.name, *(r.name for r in runs)}
    # Each run's replay table has exactly its own capacities.
    for run, caps in zip(runs, ([64], [128])):
        paths = PipelinePaths(compose_config([*overrides, f"sweep.capacities=[{caps[0]}]"]))
        assert paths.run == run
        table = pl.read_parquet(paths.replay("hit_rates.parquet"))
        assert sorted(table["capacity_blocks"].unique().to_list()) == caps


@pytest.mark.pipeline
@pytest.mark.engine
def test_default_workloads_show_the_expected_reuse_ordering(tiny_run):
    """On the real engine run: chat_single barely reuses, chat_multi and qa do,
    and every engine trace passed the hash and accounting checks."""
    import json

    import polars as pl

    _, results, _ = tiny_run
    (engine,) = (results / "engine").iterdir()
    reuse = {w: pl.read_parquet(engine / w / "b32" / "requests.parquet")
             for w in ("chat_single", "chat_multi", "qa", "summarization")}
    hit = {w: r["num_cached_tokens"].sum() / r["num_prompt_tokens"].sum() for w, r in reuse.items()}
    assert hit["chat_single"] < 0.05 and hit["summarization"] < 0.1
    assert hit["chat_multi"] > hit["chat_single"] + 0.2
    assert hit["qa"] > hit["summarization"] + 0.3
    (traces,) = (results / "traces").iterdir()
    checks = [json.loads(p.read_text()) for p in traces.glob("*/b32.check.json")]
    assert len(checks) == 4 and all(c["ok"] and c["derived_equals_engine"] for c in checks)


# --- issue 13 on the tiny DAG (each on its own copy of the shared run) -------------------------


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def mooncake_records(n: int) -> list[dict]:
    """n Mooncake-format requests sharing a 2-block prefix."""
    return [{"timestamp": 100 * i, "input_length": 1536, "output_length": 8, "hash_ids": [1, 2, 10 + i]}
            for i in range(n)]


def with_mooncake(overrides: list[str], trace: Path, *more: str) -> list[str]:
    return [*overrides, "+workload@workloads.mc=mooncake", f"workloads.mc.trace_path={trace}", *more]


@pytest.mark.pipeline
@pytest.mark.engine
def test_changed_trace_file_replans_traces_and_downstream_only(tiny_copy, tmp_path):
    """13.1: a trace file replaced at the same path is new input: the traces
    stage and everything after it are planned again (nothing upstream), and
    the new run reads the new content. 13.5: a killed writer's leftover next
    to the output is removed by the rerun."""
    overrides, _, _ = tiny_copy
    trace = write_jsonl(tmp_path / "mc.jsonl", mooncake_records(3))
    ov = with_mooncake(overrides, trace)
    paths = PipelinePaths(compose_config(ov))
    targets = [str(paths.trace("mc", 512)), str(paths.trace_check("mc", 512))]
    out_dir = paths.trace("mc", 512).parent
    out_dir.mkdir(parents=True)
    (out_dir / ".b512.parquet.k1ll3d.parquet").write_bytes(b"PAR1")  # an old-style leftover

    assert prefix_study(*ov, "--", *targets).returncode == 0
    assert json.loads(paths.trace_check("mc", 512).read_text())["requests"] == 3
    assert [p.name for p in out_dir.iterdir() if p.name.startswith(".")] == []
    assert pl.read_parquet(out_dir / "*.parquet").height == 9
    proc = prefix_study("-n", *ov, "--", *targets)
    assert job_stats(proc.stdout + proc.stderr) == {}

    before = {s: paths.stage(s) for s in STAGES}  # PipelinePaths hashes when asked
    write_jsonl(trace, mooncake_records(5))  # same path, new content
    new = PipelinePaths(compose_config(ov))
    assert new.stage("traces") != before["traces"] and new.stage("engine") == before["engine"]
    proc = prefix_study("-n", *ov)
    stats = job_stats(proc.stdout + proc.stderr)
    # 4 derived traces at the engine's block size (rule engine_block_trace) + mc
    assert stats.get("block_trace", 0) + stats.get("engine_block_trace", 0) == 5
    assert {"stats", "replay", "mixed", "figures", "run_index"} <= set(stats)
    assert not {"assets", "workload", "engine_run"} & set(stats)

    targets = [str(new.trace("mc", 512)), str(new.trace_check("mc", 512))]
    assert prefix_study(*ov, "--", *targets).returncode == 0
    assert json.loads(new.trace_check("mc", 512).read_text())["requests"] == 5


@pytest.mark.pipeline
@pytest.mark.engine
def test_changed_dataset_file_replans_workloads_and_downstream_only(tiny_copy, tmp_path):
    """13.1: the ShareGPT file's content is in the workloads stage hash."""
    import ijson

    from prefix_study.config.inputs import packaged_sharegpt_file

    overrides, _, _ = tiny_copy
    with packaged_sharegpt_file().open("rb") as f:
        records = [r for _, r in zip(range(400), ijson.items(f, "item", use_float=True))]
    data = tmp_path / "sharegpt.json"
    data.write_text(json.dumps(records[:200]))
    ov = [*overrides, f"dataset.path={data}"]
    paths = PipelinePaths(compose_config(ov))
    qa = paths.stage("workloads") / "qa.parquet"
    targets = [str(qa), str(paths.stage("assets") / "model")]
    assert prefix_study(*ov, "--", *targets).returncode == 0
    first = pl.read_parquet(qa)
    proc = prefix_study("-n", *ov, "--", *targets)
    assert job_stats(proc.stdout + proc.stderr) == {}

    before = {s: paths.stage(s) for s in STAGES}  # PipelinePaths hashes when asked
    data.write_text(json.dumps(records[200:400]))  # same path, other conversations
    new = PipelinePaths(compose_config(ov))
    assert new.stage("workloads") != before["workloads"] and new.stage("assets") == before["assets"]
    proc = prefix_study("-n", *ov)
    stats = job_stats(proc.stdout + proc.stderr)
    assert stats["workload"] == 4 and stats["engine_run"] == 1 and "assets" not in stats
    new_qa = new.stage("workloads") / "qa.parquet"
    assert prefix_study(*ov, "--", str(new_qa)).returncode == 0
    assert not pl.read_parquet(new_qa).equals(first)

    data.write_text("")  # emptied: planned again, and the job says why it fails
    emptied = PipelinePaths(compose_config(ov)).stage("workloads") / "qa.parquet"
    proc = prefix_study(*ov, "--", str(emptied))
    assert proc.returncode != 0
    assert "file is empty" in (emptied.parent / "logs" / "qa.log").read_text()


@pytest.mark.pipeline
@pytest.mark.engine
def test_infinite_timestamp_is_a_bad_line(tiny_copy, tmp_path):
    """13.8: JSON `Infinity` is not a timestamp; the error names file and line."""
    overrides, _, _ = tiny_copy
    records = mooncake_records(3)
    records[1]["timestamp"] = float("inf")
    trace = write_jsonl(tmp_path / "inf.jsonl", records)
    assert "Infinity" in trace.read_text()
    ov = with_mooncake(overrides, trace)
    paths = PipelinePaths(compose_config(ov))
    proc = prefix_study(*ov, "--", str(paths.trace_check("mc", 512)))
    assert proc.returncode != 0
    log = (paths.stage("traces") / "logs" / "mc_b512.log").read_text()
    assert f"{trace}:2" in log and "finite" in log
    ov = with_mooncake(overrides, trace, "workloads.mc.skip_bad_lines=true")
    paths = PipelinePaths(compose_config(ov))
    assert prefix_study(*ov, "--", str(paths.trace_check("mc", 512))).returncode == 0
    report = json.loads(paths.trace_check("mc", 512).read_text())
    assert report["requests"] == 2 and report["skipped_lines"] == 1


@pytest.mark.pipeline
@pytest.mark.engine
def test_report_header_names_the_block_size_of_its_numbers(tiny_copy):
    """13.7: with no sweep block size equal to mix.block_size the findings are
    at the sweep's block size, and the header says so."""
    overrides, _, _ = tiny_copy
    proc = prefix_study(*overrides, "sweep.block_sizes=[48]", "--cores", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = run_dirs(proc.stdout)
    index = ((run if run.is_absolute() else ROOT / run) / "index.md").read_text()
    assert "Hit rates at block size 48 tokens" in index
    assert "block size 32 tokens" not in index


@pytest.mark.pipeline
@pytest.mark.engine
def test_engine_capacity_sweep_at_a_binding_capacity(tiny_run):
    """11.2/11.3 through the command: the shared run has engine.capacities=[129];
    it ran every workload and the mixed stream at that capacity with batching,
    checked their traces, and the replay stage's engine table sets vLLM beside
    the batched replay (equal for every request) and the sequential one; the
    report shows the engine_capacity figure and the table. Adding a capacity
    reruns no existing engine run."""
    overrides, results, run = tiny_run
    paths = PipelinePaths(compose_config(overrides))
    table = pl.read_parquet(paths.replay("engine_sweep.parquet"))
    assert set(table["capacity_blocks"]) == {129, 16384}
    at_129 = table.filter(pl.col("capacity_blocks") == 129)
    assert set(at_129["run"]) == {"chat_single", "chat_multi", "qa", "summarization", "mixed"}
    mixed = at_129.filter((pl.col("run") == "mixed") & (pl.col("workload") == "all")).row(0, named=True)
    assert mixed["requests"] == at_129.filter(pl.col("run") != "mixed")["requests"].sum()
    assert (table["requests_differ_batched"] == 0).all()
    assert (table["batched_replay_hit_rate"] == table["engine_hit_rate"]).all()
    checks = [json.loads(p.read_text()) for p in (paths.stage("traces") / "capacity").glob("*/c129/*/b32.check.json")]
    assert len(checks) == 5 and all(c["ok"] for c in checks)
    index = (run / "index.md").read_text()
    assert "engine_capacity.png" in index and "engine_sweep.md" in index

    more = [o for o in overrides if not o.startswith("engine.capacities=")] + ["engine.capacities=[129,257]"]
    proc = prefix_study("-n", *more)
    assert proc.returncode == 0
    stats = job_stats(proc.stdout + proc.stderr)
    assert "engine_run" not in stats and "engine_block_trace" not in stats
    assert stats["engine_capacity_run"] == 1 and stats["engine_capacity_trace"] == 5
    assert "cap=257" in proc.stdout + proc.stderr and "cap=129" not in proc.stdout + proc.stderr


@pytest.mark.pipeline
@pytest.mark.engine
def test_straight_dag_each_stage_reads_what_earlier_ones_wrote(tiny_run):
    """Issue 19.3 on the shared run: savings prices the replay and mixed
    stages' per-request hits (its table agrees with the hit rates they
    report), figures draws every figure (savings' and cluster's too) and
    writes no table, the engine-vs-replay tables are the replay stage's, and
    no stage rule runs a shell command."""
    overrides, _, run = tiny_run
    paths = PipelinePaths(compose_config(overrides))
    per = pl.read_parquet(paths.replay("per_request.parquet"))
    hits = pl.read_parquet(paths.replay("hit_rates.parquet")).filter(pl.col("semantics") == "prefix")
    summed = per.group_by("workload", "block_size", "policy", "capacity_blocks").agg(
        pl.col("lookup_blocks").sum().alias("accesses"), pl.col("hit_blocks").sum().alias("hits"))
    joined = hits.join(summed, on=["workload", "block_size", "policy", "capacity_blocks"], how="full")
    assert joined.height == hits.height and (joined["hits"] == joined["hits_right"]).all()
    assert (joined["accesses"] == joined["accesses_right"]).all()
    savings = pl.read_parquet(paths.savings("savings.parquet"))
    replay_rows = savings.filter(pl.col("scope") == "replay")
    assert replay_rows.height == hits.height
    mixed_rows = savings.filter((pl.col("scope") == "mixed") & (pl.col("workload") == "all"))
    assert mixed_rows.height == pl.read_parquet(paths.mixed("per_request.parquet")).select(
        "policy", "capacity_blocks").unique().height > 0
    figures = sorted(p.name for p in paths.stage("figures").iterdir() if p.is_file())
    from prefix_study.report.captions import FIGURES

    assert figures == sorted([f"{n}.png" for n in FIGURES] + [f"{n}.svg" for n in FIGURES] + ["config.yaml"])
    for stage in ("savings", "cluster"):
        assert not list(paths.stage(stage).glob("*.png")), stage
    assert paths.replay("engine_vs_replay.parquet").exists() and paths.replay("engine_vs_replay.md").exists()
    assert "shell" not in "".join(p.read_text() for p in (ROOT / "workflow" / "rules").glob("*.smk")).replace(
        "shell line", "")


@pytest.mark.parametrize("override", [
    "results_dir='out$(touch PWNED)'", "results_dir='out`touch PWNED`'", "results_dir='out;touch PWNED'",
    "results_dir='out\ntouch PWNED'", "results_dir='out{x}'", "results_dir=\"o'ut\"",
])
def test_unsafe_results_dir_is_refused_naming_the_key(capsys, monkeypatch, tmp_path, override):
    """Issue 23.4 through the command's main: shell characters in results_dir
    are refused before any job, the key named, and nothing they spell is
    executed (a space works: the shared run's results_dir has one)."""
    from prefix_study.cli import main as cli_main

    monkeypatch.chdir(tmp_path)
    assert cli_main([override, *TINY]) == 2
    err = capsys.readouterr().err
    assert "results_dir=" in err and "is invalid" in err
    assert not list(tmp_path.rglob("PWNED")) and not (ROOT / "PWNED").exists()
    assert list(tmp_path.iterdir()) == []
