"""Issues 13 and 23's fault probes, case by case, through the `prefix-study` command.

Bad values must stop the command before any job runs (exit 2, the key
named, nothing written); a run killed with SIGKILL must not block or litter
the next one. The cases that need stage outputs (stale inputs, the report
header, infinite timestamps, leftover temp files) are in test_pipeline.py,
on its tiny DAG; issue 23's killed rerun, code versions and index links use
the same run (`tiny_run`, or a copy of it, `tiny_copy`: conftest.py).
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

from pipeline_run import CLI, ROOT, job_stats, prefix_study

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


@pytest.mark.pipeline
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


@pytest.mark.pipeline
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
    while not (model.parent / "logs" / "assets.log").exists():
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
    # The run released its own lock files and left the directory (run_locks.py, set by the Snakefile).
    assert locks.is_dir() and not list(locks.glob("*.lock"))
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


def test_stale_lock_of_this_results_dir_goes_while_another_run_goes_on(tmp_path):
    """Two runs may share a project when their results directories differ (the
    test suite's workers do). A killed run's lock on results A is stale even
    while a run on results B goes on; B's lock stays, and so does A's while a
    live run writes A."""
    from prefix_study.cli import clear_stale_lock
    from prefix_study.pipeline import config_arg

    project = _project_copy(tmp_path)
    locks = project / ".snakemake" / "locks"
    locks.mkdir(parents=True)
    a, b = tmp_path / "results A", tmp_path / "results B"
    (locks / "0.input.lock").write_text(f"{b}/workloads/x/input.parquet\n")
    (locks / "0.output.lock").write_text(f"{b}/stats/y/stats.parquet\n")
    (locks / "1.input.lock").write_text("data/sharegpt.json\n")
    (locks / "1.output.lock").write_text(f"{a}/stats/y/stats.parquet\n")

    def live_run(results: Path) -> subprocess.Popen:
        # Looks like Snakemake to /proc (argv[0] is `snakemake`), with the command line prefix-study gives it.
        return subprocess.Popen(["snakemake", "-c", "import time; time.sleep(60)", "--config",
                                 config_arg(["sweep=tiny", f"results_dir={results}"])],
                                executable=sys.executable, cwd=project)

    on_b = live_run(b)
    try:
        time.sleep(0.5)
        message = clear_stale_lock(project, [a])
        assert "removed a stale Snakemake lock (2 files" in message and f"pid {on_b.pid}" in message
        assert sorted(p.name for p in locks.iterdir()) == ["0.input.lock", "0.output.lock"]
        assert clear_stale_lock(project, [a]) is None  # nothing of A is locked now
        # Without knowing which results directory is meant, a live run keeps every lock.
        assert "is held by a running Snakemake" in clear_stale_lock(project)
        (locks / "1.output.lock").write_text(f"{a}/stats/y/stats.parquet\n")
        on_a = live_run(a)
        try:
            time.sleep(0.5)
            assert f"{on_a.pid}" in clear_stale_lock(project, [a])
            assert (locks / "1.output.lock").exists()
        finally:
            on_a.kill()
            on_a.wait()
    finally:
        on_b.kill()
        on_b.wait()


def test_a_run_that_ends_leaves_another_runs_locks(tmp_path):
    """Snakemake's own file persistence, as the Snakefile sets it up
    (run_locks.py): run A ending removes A's lock files only. Snakemake 9
    removed the whole lock directory, B's locks with it, and a run taking its
    lock at that moment failed on its lock file (a CI run of this suite).
    `snakemake --unlock` (cleanup_locks) still removes every lock."""
    from snakemake.persistence.file import FilePersistence

    from prefix_study.run_locks import release_own_locks

    release_own_locks()
    path = tmp_path / ".snakemake"
    a, b, c = (FilePersistence(path=path) for _ in range(3))
    a._write_locks("output", ["results A/x.parquet"])
    b._write_locks("output", ["results B/y.parquet"])
    locks = path / "locks"
    assert sorted(p.name for p in locks.iterdir()) == ["0.output.lock", "1.output.lock"]
    a.unlock()
    assert [p.read_text() for p in locks.iterdir()] == ["results B/y.parquet\n"]
    c._write_locks("input", ["data/sharegpt.json"])  # a run starting meanwhile takes its lock
    b.unlock()
    assert [p.name for p in locks.iterdir()] == ["0.input.lock"]
    FilePersistence(path=path).cleanup_locks()  # snakemake --unlock
    assert not locks.exists()


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


# === Issue 23: the second fault probe =================================================
#
# Compose-time refusals run in-process through the command's `main` (exit 2,
# the key named, nothing written); the cases that need jobs run Snakemake
# through the installed `prefix-study` command.


# --- 3, 5. capacities under one block, or past what a replay can number -------------


@pytest.mark.parametrize("overrides, words", [
    (["sweep.capacity_unit=gib", "sweep.capacities=[1e-9]"], ["sweep.capacities=1e-09 (gib)", "0 blocks"]),
    (["sweep.capacity_unit=tokens", "sweep.capacities=[1]"], ["sweep.capacities=1 (tokens)", "0 blocks"]),
    (["cluster.capacity_unit=tokens", "cluster.capacity=8"], ["cluster.capacity=8", "0 blocks at block size 32"]),
    (["cluster.capacity=inf"], ["cluster.capacity=inf", "finite"]),
    (["cluster.capacity=1e30"], ["cluster.capacity=1e+30", "at most 2147483647 blocks"]),
    (["sweep.capacities=[64,4294967296]"], ["sweep.capacities=4294967296", "at most 2147483647"]),
])
def test_capacities_that_cannot_run_are_refused_with_their_block_count(capsys, tmp_path, overrides, words):
    err = refused(capsys, tmp_path, *overrides)
    for word in words:
        assert word in err


def test_external_trace_block_size_counts_for_the_smallest_capacity(capsys, tmp_path):
    """A Mooncake block holds 512 tokens: 256 tokens is no block of it."""
    trace = write_jsonl(tmp_path / "m.jsonl", MOONCAKE_LINES)
    err = refused(capsys, tmp_path, "+workload@workloads.mc=mooncake", f"workloads.mc.trace_path={trace}",
                  "sweep.capacity_unit=tokens", "sweep.capacities=[256,1024]")
    assert "sweep.capacities=256 (tokens)" in err and "block size 512" in err


# --- 6, 7. names and ranges -----------------------------------------------------------


@pytest.mark.parametrize("overrides, words", [
    (["+workload@workloads.my-trace=mooncake"], ["workloads", "my-trace", "[A-Za-z0-9_]+", "my_trace"]),
    (["cost.compare_workloads=[chat_mult]"], ["cost.compare_workloads", "chat_mult"]),
    (["engine.capacities=[129,129]"], ["engine.capacities", "repeated: 129"]),
    (["cluster.router.sglang_cache_aware.balance_rel_threshold=-1"],
     ["cluster.router.sglang_cache_aware.balance_rel_threshold", ">= 1.0"]),
    (["cluster.router.sglang_cache_aware.max_tree_size=0"], ["cluster.router.sglang_cache_aware.max_tree_size"]),
    (["cluster.router.dynamo_kv.router_prune_target_ratio=1.5"],
     ["cluster.router.dynamo_kv.router_prune_target_ratio"]),
    (["cluster.router.llmd.queue_weight=nan"], ["cluster.router.llmd.queue_weight"]),
    (["cluster.seed=-1"], ["cluster.seed"]),
])
def test_names_and_parameter_ranges_are_checked_at_compose_time(capsys, tmp_path, overrides, words):
    if overrides[0].startswith("+workload@"):
        trace = write_jsonl(tmp_path / "m.jsonl", MOONCAKE_LINES)
        overrides = [*overrides, f"workloads.my-trace.trace_path={trace}"]
    err = refused(capsys, tmp_path, *overrides)
    for word in words:
        assert word in err


# --- 8. compressed traces and undecodable lines ------------------------------------------


def test_unsupported_compression_is_refused_at_compose_time(capsys, tmp_path):
    import bz2

    trace = tmp_path / "m.jsonl.bz2"
    trace.write_bytes(bz2.compress("".join(json.dumps(r) + "\n" for r in MOONCAKE_LINES).encode()))
    err = refused(capsys, tmp_path, "+workload@workloads.mc=mooncake", f"workloads.mc.trace_path={trace}")
    assert "workloads.mc.trace_path" in err and "bzip2" in err and "gzip or zstd" in err


@pytest.mark.pipeline
def test_compressed_traces_import_and_bad_lines_name_file_and_line(tmp_path):
    """gzip and zstd files import like the plain file; a Latin-1 byte and a
    400-digit timestamp fail their traces job naming the file and the line."""
    import gzip

    import polars as pl
    import zstandard

    from prefix_study.config.compose import compose_config
    from prefix_study.pipeline import PipelinePaths

    text = "".join(json.dumps(r) + "\n" for r in MOONCAKE_LINES).encode()
    files = {
        "gz": gzip.compress(text),
        "zst": zstandard.ZstdCompressor().compress(text),
        "latin": text + b'{"timestamp": 20, "input_length": 8, "output_length": 1, "hash_ids": [1], "x": "caf\xe9"}\n',
        "huge": text + b'{"timestamp": ' + b"9" * 400 + b', "input_length": 8, "output_length": 1, "hash_ids": [1]}\n',
    }
    overrides = [f"results_dir={tmp_path / 'results'}"]
    for name, data in files.items():
        path = tmp_path / f"{name}.jsonl{'.' + name if name in ('gz', 'zst') else ''}"
        path.write_bytes(data)
        overrides += [f"+workload@workloads.{name}=mooncake", f"workloads.{name}.trace_path={path}"]
    paths = PipelinePaths(compose_config(overrides))
    targets = {name: paths.trace(name, 512) for name in files}
    proc = prefix_study(*overrides, "--", "--keep-going", *map(str, targets.values()))
    assert proc.returncode != 0
    gz, zst = (pl.read_parquet(targets[name]).select("time_s", "position", "block_hash") for name in ("gz", "zst"))
    assert gz.equals(zst) and gz["position"].to_list() == [0, 1, 0, 1]  # both requests, both blocks
    logs = paths.stage("traces") / "logs"
    latin = "".join(p.read_text() for p in logs.glob("latin*.log"))
    assert "latin.jsonl:3: not UTF-8: byte 0xe9" in latin
    huge = "".join(p.read_text() for p in logs.glob("huge*.log"))
    assert "huge.jsonl:3: field 'timestamp'" in huge and "400-digit" in huge
    assert "OverflowError" not in huge and "UnicodeDecodeError" not in latin
    assert not targets["latin"].exists() and not targets["huge"].exists()


# --- 9. results_dir that cannot hold results -------------------------------------------


@pytest.mark.parametrize("value, words", [
    ("FILE", ["results_dir=", "is a file"]),
    ("FILE/below", ["results_dir=", "is a file"]),
    ("'a\nb'", ["results_dir=", "newline"]),
])
def test_results_dir_that_cannot_be_a_directory_is_refused(capsys, tmp_path, value, words):
    (tmp_path / "plain_file").write_text("x")
    value = value.replace("FILE", str(tmp_path / "plain_file"))
    rc = cli_main(["--print-run-dir", f"results_dir={value}"])
    err = capsys.readouterr().err
    assert rc == 2, err
    for word in words:
        assert word in err


# --- 1, 10, 11. a killed rerun, the index's links, the report line ----------------------

_CLUSTER_OUTPUTS = ("cluster.parquet", "cluster.md")


def _index_links_resolve(index: Path) -> list[str]:
    from prefix_study.report.index import broken_links

    return broken_links(index.read_text(), index.parent, skip=())


@pytest.mark.pipeline
def test_killed_forcerun_is_rebuilt_and_the_index_links_only_files_that_exist(tiny_copy):
    """1: `--forcerun cluster` deletes the cluster outputs; kill -9 the run while
    the job runs and the next plain run must rebuild them (and the index and
    report after them), not find nothing to do. 10 (absolute results_dir):
    every link in index.md resolves."""
    from prefix_study.config.compose import compose_config
    from prefix_study.pipeline import PipelinePaths

    overrides, _, run = tiny_copy
    assert _index_links_resolve(run / "index.md") == []
    cluster = PipelinePaths(compose_config(overrides)).stage("cluster")
    argv = [str(CLI), *overrides, "--", "--forcerun", "cluster"]
    killed = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    deadline = time.monotonic() + 300
    while any((cluster / f).exists() for f in _CLUSTER_OUTPUTS):  # removed as the forced job starts
        assert killed.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.1)
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()
    assert not any((cluster / f).exists() for f in _CLUSTER_OUTPUTS)

    proc = prefix_study(*overrides)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Nothing to be done" not in proc.stdout + proc.stderr
    assert {"cluster", "run_index", "report_html"} <= set(job_stats(proc.stdout + proc.stderr))
    assert all((cluster / f).exists() for f in _CLUSTER_OUTPUTS)
    assert (run / "report.html").stat().st_mtime >= (cluster / "cluster.md").stat().st_mtime
    assert _index_links_resolve(run / "index.md") == []
    assert "report: " in proc.stdout and "not built" not in proc.stdout


@pytest.mark.pipeline
def test_index_links_resolve_under_a_nested_relative_results_dir(tiny_copy, tmp_path):
    """10: index.md written for results_dir=nested/dir/results (relative to
    the project directory) links files that exist."""
    overrides, results, run = tiny_copy
    project = _project_copy(tmp_path)
    (project / "nested" / "dir").mkdir(parents=True)
    (project / "nested" / "dir" / "results").symlink_to(results)
    index = run / "index.md"
    before = index.stat().st_mtime_ns
    nested = [o for o in overrides if not o.startswith("results_dir=")] + ["results_dir=nested/dir/results"]
    proc = prefix_study("-d", str(project), *nested, "--", "--forcerun", "run_index")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert index.stat().st_mtime_ns != before
    assert "](../../figures/" in index.read_text()
    assert _index_links_resolve(index) == []


@pytest.mark.pipeline
def test_report_line_only_for_a_report_the_run_built(tiny_copy):
    """11: with explicit targets after `--` the command does not claim a report."""
    from prefix_study.config.compose import compose_config
    from prefix_study.pipeline import PipelinePaths

    overrides, _, _ = tiny_copy
    stats = PipelinePaths(compose_config(overrides)).stage("stats") / "reuse_summary.md"
    assert stats.exists()
    proc = prefix_study(*overrides, "--", str(stats))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "report: not built by this run" in proc.stdout and "report.html" not in proc.stdout


# --- 2. a code change reruns its stage and everything after it ---------------------------


def _source_copy(tmp_path: Path) -> Path:
    """The project (Snakefile, workflow, conf, src) copied, so its code can be edited."""
    project = _project_copy(tmp_path)
    shutil.copytree(ROOT / "conf", project / "conf")
    shutil.copytree(ROOT / "src", project / "src", ignore=shutil.ignore_patterns("__pycache__"))
    return project


@pytest.mark.pipeline
def test_code_edit_reruns_its_stage_and_downstream_without_a_version_bump(tiny_run, tmp_path):
    """A replay kernel edited (no version bump) replans replay, the stages that
    import the kernels (mixed, cluster) and everything after them; upstream
    stays. A comment or docstring edit replans nothing."""
    overrides, _, _ = tiny_run
    project = _source_copy(tmp_path)
    kernel = project / "src" / "prefix_study" / "replay" / "kernels" / "fifo.py"
    source = kernel.read_text()
    env = {**os.environ, "PYTHONPATH": str(project / "src")}

    def plan() -> dict[str, int]:
        proc = subprocess.run([str(CLI), "-n", "-d", str(project), *overrides], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=600)
        print(proc.stdout[-2000:], proc.stderr[-2000:])
        assert proc.returncode == 0, proc.stderr[-3000:]
        return job_stats(proc.stdout + proc.stderr)

    kernel.write_text("# a comment\n" + source.replace('"""', '"""Docstrings do not count. ', 1))
    assert plan() == {}
    kernel.write_text(source + "\n_EDITED = 1\n")
    jobs = plan()
    assert {"replay", "mixed", "figures", "savings", "cluster", "run_index", "report_html"} <= set(jobs)
    assert not {"assets", "workload", "engine_run", "engine_block_trace", "stats"} & set(jobs)
