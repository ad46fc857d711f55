"""Issue 13's fault probe, case by case, through the `prefix-study` command.

Bad values must stop the command before any job runs (exit 2, the key
named, nothing written); a run killed with SIGKILL must not block or litter
the next one. The cases that need stage outputs (stale inputs, the report
header, infinite timestamps, leftover temp files) are in test_pipeline.py,
on its tiny DAG.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from prefix_study.cli import main as cli_main
from prefix_study.io import atomic_path, write_parquet

ROOT = Path(__file__).resolve().parents[1]
CLI = Path(sys.executable).parent / "prefix-study"

MOONCAKE_LINES = [
    {"timestamp": 0, "input_length": 1024, "output_length": 8, "hash_ids": [1, 2]},
    {"timestamp": 10, "input_length": 1024, "output_length": 8, "hash_ids": [1, 3]},
]


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def refused(capsys, tmp_path, *overrides: str) -> str:
    """Run the command on `overrides`; it must exit 2 before creating results. Returns stderr."""
    results = tmp_path / "results"
    rc = cli_main(["--print-run-dir", f"results_dir={results}", *overrides])
    err = capsys.readouterr().err
    print(err)
    assert rc == 2, err
    assert not results.exists()
    return err


# --- 2. values that passed validation, then crashed mid-DAG -------------------------


@pytest.mark.parametrize("overrides, keys", [
    (["seed=-5"], ["seed"]),
    (["engine.seed=-1"], ["engine.seed"]),
    (["sweep.semantics=[]"], ["sweep.semantics"]),
    (["mix.semantics=[]"], ["mix.semantics"]),
    (["mix.semantics=[foo]"], ["mix.semantics"]),
    (["sweep.semantics=[prefix,prefix]"], ["sweep.semantics"]),
    (["sweep.capacities=[64,64]"], ["sweep.capacities", "repeated: 64"]),
    (["mix.capacities=[128,128]"], ["mix.capacities"]),
    (["sweep.block_sizes=[16,16]"], ["sweep.block_sizes"]),
    (["workloads.chat_multi.think_time.distribution=lognormal", "workloads.chat_multi.think_time.sigma=-1"],
     ["workloads.chat_multi.think_time.sigma"]),
    (["engine.capacity_blocks=4"], ["engine.capacity_blocks", "engine.max_model_len"]),
    # 65 holds one 4096-token request at block size 64 but not at 32.
    (["engine.capacity_blocks=65"], ["engine.capacity_blocks", "engine.max_model_len=4096", "block size 32"]),
])
def test_bad_values_are_refused_before_any_job(capsys, tmp_path, overrides, keys):
    err = refused(capsys, tmp_path, *overrides)
    for key in keys:
        assert key in err


def test_engine_capacity_check_admits_the_smallest_capacity_that_fits(capsys, tmp_path):
    # ceil(4096 / 32) = 128 blocks for one request + vLLM's null block.
    assert "129" in refused(capsys, tmp_path, "engine.capacity_blocks=128")
    assert cli_main(["--print-run-dir", f"results_dir={tmp_path}/r", "engine.capacity_blocks=129"]) == 0


def test_nonexistent_trace_path_is_refused_before_any_job(capsys, tmp_path):
    err = refused(capsys, tmp_path, "+workload@workloads.mc=mooncake",
                  f"workloads.mc.trace_path={tmp_path / 'missing.jsonl'}")
    assert "workloads.mc.trace_path" in err and "missing.jsonl" in err


# --- 3. empty external traces -------------------------------------------------------


@pytest.mark.parametrize("content", ["", "\n  \n\t\n"])
def test_empty_or_blank_trace_file_is_refused(capsys, tmp_path, content):
    trace = tmp_path / "empty.jsonl"
    trace.write_text(content)
    err = refused(capsys, tmp_path, "+workload@workloads.mc=mooncake", f"workloads.mc.trace_path={trace}")
    assert "workloads.mc.trace_path" in err and "empty.jsonl" in err


@pytest.mark.parametrize("value", ["-3", "0"])
def test_non_positive_max_requests_is_refused(capsys, tmp_path, value):
    trace = write_jsonl(tmp_path / "m.jsonl", MOONCAKE_LINES)
    err = refused(capsys, tmp_path, "+workload@workloads.mc=mooncake", f"workloads.mc.trace_path={trace}",
                  f"workloads.mc.max_requests={value}")
    assert "workloads.mc.max_requests" in err


# --- 6. `+` past the schema ----------------------------------------------------------


@pytest.mark.parametrize("override", ["+sweep.capacitie=[64]", "+engine.foo=1", "++sweep.colour=red"])
def test_plus_may_only_add_a_config_group(capsys, tmp_path, override):
    err = refused(capsys, tmp_path, override)
    assert override in err and "config group" in err


def test_plus_adds_a_workload_from_the_workload_group(capsys, tmp_path):
    trace = write_jsonl(tmp_path / "m.jsonl", MOONCAKE_LINES)
    assert cli_main(["--show-config", f"results_dir={tmp_path}/r", "+workload@workloads.mc=mooncake",
                     f"workloads.mc.trace_path={trace}"]) == 0
    assert "kind: mooncake" in capsys.readouterr().out


# --- 9. the run directory must stay inside results/ ---------------------------------


@pytest.mark.parametrize("name", ["../../escape", "", "a/b", ".hidden", "..", "x y"])
def test_experiment_name_is_validated(capsys, tmp_path, name):
    assert "experiment" in refused(capsys, tmp_path, f"experiment='{name}'")


def test_good_experiment_names_pass(capsys, tmp_path):
    for name in ("baseline", "cap-sweep_2.v1"):
        assert cli_main(["--print-run-dir", f"results_dir={tmp_path}/r", f"experiment={name}"]) == 0
        assert f"runs/{name}-" in capsys.readouterr().out


# --- 10. messages that say what to do -------------------------------------------------


def test_relative_dataset_path_names_the_directory_it_is_resolved_against(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.json").write_text("[]")  # here, but not in the project directory
    err = refused(capsys, tmp_path, "dataset.path=mine.json")
    assert "dataset.path" in err and "project directory" in err and str(ROOT / "mine.json") in err


def test_wrong_shaped_dataset_says_no_record_was_usable(tmp_path):
    """Through the command, the workload job fails with the reason, not with
    advice to raise dataset.max_conversations."""
    data = tmp_path / "wrong.json"
    data.write_text(json.dumps([{"id": str(i), "messages": [{"role": "user", "text": "hi"}]} for i in range(50)]))
    results = tmp_path / "results"
    overrides = [f"results_dir={results}", f"dataset.path={data}", "dataset.max_conversations=10"]
    from prefix_study.config.compose import compose_config
    from prefix_study.pipeline import PipelinePaths

    target = PipelinePaths(compose_config(overrides)).stage("workloads") / "qa.parquet"
    proc = subprocess.run([str(CLI), *overrides, "--", str(target)], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode != 0
    (log,) = (target.parent / "logs").glob("qa.log")
    text = log.read_text()
    assert "no usable conversation" in text and "not_a_record=50" in text
    assert "raise dataset.max_conversations" not in text


# --- 4, 5, 11. a run killed with SIGKILL ----------------------------------------------


def _project_copy(tmp_path: Path) -> Path:
    """A project directory of its own (Snakefile + rules), so its .snakemake/ lock is ours."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "Snakefile", project / "Snakefile")
    shutil.copytree(ROOT / "workflow", project / "workflow")
    return project


def test_killed_run_leaves_a_lock_the_next_run_clears_and_no_litter(tmp_path):
    from prefix_study.config.compose import compose_config
    from prefix_study.pipeline import PipelinePaths

    project = _project_copy(tmp_path)
    overrides = [f"results_dir={tmp_path / 'results'}"]
    model = PipelinePaths(compose_config(overrides)).stage("assets") / "model"
    argv = [str(CLI), "-d", str(project), *overrides, "--", str(model)]

    run = subprocess.Popen(argv, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)
    locks = project / ".snakemake" / "locks"
    deadline = time.monotonic() + 300
    while not (model.parent / "logs" / "model_assets.log").exists():
        assert run.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.2)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    assert list(locks.glob("*.lock")), "SIGKILL should leave Snakemake's lock behind"
    # What an earlier kill can leave next to the model directory (old and new temp names).
    (model.parent / ".model.k1ll3d").mkdir(exist_ok=True)
    (model.parent / ".model.k1ll3d.tmp").mkdir(exist_ok=True)

    proc = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    print(proc.stdout, proc.stderr)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "removed a stale Snakemake lock" in proc.stderr and "snakemake --unlock" in proc.stderr
    assert not list(locks.glob("*.lock"))
    assert sorted(p.name for p in model.parent.iterdir() if p.name.startswith(".")) == []
    # 11: the model is readable by everyone.
    assert model.stat().st_mode & 0o777 == 0o755
    files = [p for p in model.rglob("*") if p.is_file()]
    assert files and all(p.stat().st_mode & 0o777 == 0o644 for p in files)


def test_live_run_lock_is_not_removed(tmp_path):
    """A lock with a Snakemake process running in the directory is left alone."""
    from prefix_study.cli import clear_stale_lock

    project = _project_copy(tmp_path)
    locks = project / ".snakemake" / "locks"
    locks.mkdir(parents=True)
    (locks / "0.output.lock").write_text("x\n")
    # A process that looks like Snakemake to /proc (argv[0] is `snakemake`), running there.
    live = subprocess.Popen(["snakemake", "-c", "import time; time.sleep(60)"], executable=sys.executable,
                            cwd=project)
    try:
        time.sleep(0.5)
        message = clear_stale_lock(project)
        assert f"pid {live.pid}" in message and "snakemake --unlock" in message
        assert (locks / "0.output.lock").exists()
    finally:
        live.kill()
        live.wait()
    assert "removed a stale Snakemake lock" in clear_stale_lock(project)
    assert not (locks / "0.output.lock").exists()


def test_temporary_names_never_match_output_globs(tmp_path):
    import polars as pl

    out = tmp_path / "kv_events.parquet"
    # Leftovers of killed writers of this output: old style (ends in .parquet) and new.
    (tmp_path / ".kv_events.parquet.abc123.parquet").write_bytes(b"PAR1")
    (tmp_path / ".kv_events.parquet.def456.tmp").write_bytes(b"PAR1")
    write_parquet(pl.DataFrame({"a": [1]}), tmp_path / "other.parquet")
    with atomic_path(out) as tmp:
        assert tmp.name.startswith(".") and tmp.name.endswith(".tmp") and not tmp.match("*.parquet")
        assert not list(tmp_path.glob(".kv_events.parquet.*.parquet"))  # cleared before writing
        pl.DataFrame({"a": [2, 3]}).write_parquet(tmp)
    assert pl.read_parquet(tmp_path / "*.parquet")["a"].sort().to_list() == [1, 2, 3]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kv_events.parquet", "other.parquet"]
