"""The DAG through a real one-node SLURM cluster (slurmctld + slurmd + munge),
started and stopped by these tests (scripts/slurm/local_cluster.py).

The packages come from scripts/slurm/install.sh (apt-get, root). On a machine
without root or apt-get the tests skip and say why; anything else that fails
(install, daemons, jobs) fails the test.

What the run proves (the whole DAG of the tiny config with its engine
capacity sweep, as the session's local run `tiny_run` has it: the engine jobs,
then traces, statistics, replays, mix, savings, cluster, figures and the
report):
- every rule of that DAG ran as a SLURM job (the controller's job records);
- its outputs equal the local run of the same config byte for byte (conftest's
  `tiny_run`), so SLURM leaves the results unchanged;
- an engine job cancelled on the node (`scancel` mid-run) is resubmitted by the
  profile's `retries` and the DAG completes.
A second run, on the cluster at the same time (each run's jobs carry its run
ID), shows a job that fails for a real reason (a corrupt dataset file) failing
the DAG after the profile's one retry, with the rule's log shown.

Engine fan-out (`engine.fan_out=workload`, one engine job per workload) is not
run here: its nine vLLM starts tripled this test's time. Its jobs call the
same stage function on one run each, so its outputs equal the amortised
run's when a fresh engine writes what a reused one writes
(test_engine_batching.py::test_a_reused_engine_writes_what_a_fresh_one_writes);
its plan is checked in test_pipeline.py.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from prefix_study.config.compose import compose_config
from prefix_study.pipeline import PipelinePaths

from pipeline_run import CLI, ROOT, TINY, TINY_ENGINE_CAPACITIES, job_stats

sys.path.insert(0, str(ROOT / "scripts" / "slurm"))
from local_cluster import INSTALL_SCRIPT, ClusterUnavailable, LocalSlurm  # noqa: E402

pytestmark = pytest.mark.slurm

PROFILE = ["--profile", "workflow/profiles/slurm",
           # Poll every few seconds (the profile's 20 s suits a real queue).
           "--slurm-init-seconds-before-status-checks", "2"]
SLURM_TIMEOUT = 1200
COMPARED = (".parquet", ".json", ".md")
#: run.json's wall-clock measurements (the engine's own speed), which no two
#: runs share; everything else in it is compared.
WALL_CLOCK_KEYS = ("wall_s", "tokens_per_s")


def local_rules() -> set[str]:
    """Rules marked `localrule: True` in workflow/rules/*.smk (they run on the submitting host)."""
    names = set()
    for smk in (ROOT / "workflow" / "rules").glob("*.smk"):
        for block in re.split(r"^\s*rule ", smk.read_text(), flags=re.M)[1:]:
            if re.search(r"^\s*localrule:\s*True", block, flags=re.M):
                names.add(block.split(":", 1)[0].strip())
    return names | {"all"}


def comparable(path: Path, results: Path) -> bytes:
    """A result file's bytes; JSON and Markdown with the results directory's own
    path written as <results> and run.json without its wall-clock figures."""
    data = path.read_bytes()
    if path.suffix == ".parquet":
        return data
    text = data.decode().replace(str(results), "<results>")
    if path.name == "run.json":
        meta = json.loads(text)
        for key in WALL_CLOCK_KEYS:
            meta.get("stats", {}).pop(key, None)
        text = json.dumps(meta, sort_keys=True)
    return text.encode()


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """Install (once per machine), start the cluster, stop it afterwards, failures included."""
    install = subprocess.run(["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True, timeout=900)
    if install.returncode == 2:  # no root / no apt-get: the script says which
        pytest.skip(f"cannot install SLURM here: {install.stderr.strip()}")
    assert install.returncode == 0, install.stdout + install.stderr
    print(install.stdout.strip())
    cluster = LocalSlurm(tmp_path_factory.mktemp("slurm"))
    try:
        cluster.start()
    except ClusterUnavailable as e:
        pytest.skip(str(e))
    assert set(cluster.daemon_pids()) == {"munged", "slurmctld", "slurmd"}
    try:
        yield cluster
    finally:
        cluster.stop()
    assert cluster.daemon_pids() == {} and cluster.job_processes() == []


class SlurmRun:
    """`prefix-study OVERRIDES -- --profile workflow/profiles/slurm TARGETS`
    against the cluster, started in the background; `finish()` waits for it.
    Its jobs are the controller's jobs named with its run ID (the plugin names
    every job of a Snakemake run with that run's ID), so two runs can share
    the cluster."""

    def __init__(self, cluster, overrides, targets, logdir: Path):
        self.cluster = cluster
        # Its own job log directory: when a run ends, the plugin deletes the empty
        # directories of its log directory, and with them those of another run's
        # queued jobs, which then fail on start ("Could not open stdout file").
        self.cmd = [str(CLI), *overrides, "--", *PROFILE, "--slurm-logdir", str(logdir),
                    *map(str, targets)]
        # Its own process group: stop() ends the command and its Snakemake together.
        self.proc = subprocess.Popen(self.cmd, cwd=ROOT, env=cluster.env(), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.out: list[str] = []
        self.reader = threading.Thread(target=lambda: self.out.extend(self.proc.stdout), daemon=True)
        self.reader.start()
        self.deadline = time.monotonic() + SLURM_TIMEOUT

    def run_id(self) -> str | None:
        """The plugin's `SLURM run ID: <id>` line (None before it is printed)."""
        m = re.search(r"SLURM run ID: (\S+)", "".join(self.out))
        return m.group(1) if m else None

    def jobs(self) -> list[dict[str, str]]:
        """This run's jobs in the controller's records."""
        run_id = self.run_id()
        return [j for j in self.cluster.jobs() if run_id and j.get("JobName") == run_id]

    def finish(self, on_job=None) -> tuple[int, str]:
        """Wait for the run; `on_job(run)` is polled meanwhile. (exit code, output)."""
        try:
            while self.proc.poll() is None:
                assert time.monotonic() < self.deadline, "".join(self.out)[-5000:]
                if on_job is not None:
                    on_job(self)
                time.sleep(0.5)
        finally:
            self.stop()
        text = "".join(self.out)
        print(f"$ {' '.join(self.cmd)}\n[exit {self.proc.returncode}]\n{text[-20000:]}")
        return self.proc.returncode, text

    def stop(self) -> None:
        """Kill the command and its Snakemake if still running (a failed test)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.reader.join(timeout=10)


def rule_of(job: dict[str, str]) -> str:
    """The executor plugin's comment `rule_<name>[_wildcards_...]` -> <name>."""
    return job.get("Comment", "").removeprefix("rule_").split("_wildcards_", 1)[0]


class CancelEngineJobMidRun:
    """scancel the engine job once its stage has started on the node (its log
    exists): what a lost node or a preemption does to a running job."""

    def __init__(self, paths: PipelinePaths):
        self.paths = paths
        self.cancelled: str | None = None

    def __call__(self, run: SlurmRun):
        if self.cancelled:
            return
        for job in run.jobs():
            if rule_of(job) != "engine_run" or job["JobState"] != "RUNNING":
                continue
            bs = job["Comment"].split("_wildcards_", 1)[1]
            if self.paths.log("engine", f"b{bs}").exists():
                run.cluster.run("scancel", job["JobId"])
                self.cancelled = job["JobId"]
                return


def test_tiny_dag_through_slurm_equals_local_run(slurm, failing_run, request, tmp_path):
    # `failing_run` (the next test's) runs beside this one. The local run (`tiny_run`) is
    # asked for once this run is done: whichever worker asks first builds it, meanwhile.
    results = tmp_path / "results"
    overrides = [*TINY, TINY_ENGINE_CAPACITIES, f"results_dir={results}"]
    paths = PipelinePaths(compose_config(overrides))
    cancel = CancelEngineJobMidRun(paths)
    run = SlurmRun(slurm, overrides, [], tmp_path / "slurm_logs")  # the default target: all
    code, out = run.finish(on_job=cancel)
    assert code == 0, out[-5000:]
    local_overrides, local_results, local_run = request.getfixturevalue("tiny_run")
    planned = job_stats(out)
    local = local_rules()
    assert "stage_config" in local
    assert set(planned) >= {"assets", "workload", "engine_run", "engine_capacity_run",
                            "engine_block_trace", "engine_capacity_trace", "stats", "replay", "mixed",
                            "savings", "cluster", "figures", "run_index", "report_html"}, planned
    assert planned["engine_block_trace"] == 4  # one per workload
    # One per run of the capacity sweep (4 workloads + their mixed stream) and capacity (one).
    assert planned["engine_capacity_trace"] == 5

    # The controller's records: every non-local job of the DAG ran as a SLURM job.
    jobs = run.jobs()
    done = [j for j in jobs if j["JobState"] == "COMPLETED"]
    ran = {}
    for j in done:
        ran[rule_of(j)] = ran.get(rule_of(j), 0) + 1
    expected = {rule: n for rule, n in planned.items() if rule not in local}
    assert ran == expected, (ran, expected)
    completions = {r["JobId"]: r["JobState"] for r in slurm.completed_jobs()}
    assert all(completions.get(j["JobId"]) == "COMPLETED" for j in done)

    # The cancelled engine job was retried (the profile's `retries: 1`); no other job failed.
    assert cancel.cancelled, "no engine job was seen running"
    assert [j for j in jobs if j["JobState"] != "COMPLETED" and j["JobId"] != cancel.cancelled] == []
    (killed,) = [j for j in jobs if j["JobId"] == cancel.cancelled]
    assert killed["JobState"] == "CANCELLED" and completions[cancel.cancelled] == "CANCELLED"
    retried = [j for j in done if j["Comment"] == killed["Comment"]]
    assert len(retried) == 1 and int(retried[0]["JobId"]) > int(killed["JobId"]), retried

    # Byte for byte what the local run wrote, stage by stage, figures included.
    assert local_overrides[:-1] == overrides[:-1]  # the same config, results_dir aside
    files = sorted(p for p in results.rglob("*") if p.is_file() and p.suffix in COMPARED
                   and "logs" not in p.parts and "benchmarks" not in p.parts and "runs" not in p.parts)
    stages = {f.relative_to(results).parts[0] for f in files}
    assert {"engine", "traces", "stats", "replay", "mixed", "savings", "cluster"} <= stages, stages
    engine_files = [f for f in files if f.relative_to(results).parts[0] == "engine"]
    assert len(engine_files) >= (4 + 5) * 4, engine_files  # (4 runs + 5 capacity runs) x 4 files
    missing = [str(f.relative_to(results)) for f in files if not (local_results / f.relative_to(results)).exists()]
    assert not missing, missing
    differ = [str(f.relative_to(results)) for f in files
              if comparable(f, results) != comparable(local_results / f.relative_to(results), local_results)]
    assert not differ, differ
    figures = sorted(p for p in (results / "figures").rglob("*.png"))
    assert len(figures) >= 5, figures
    assert [f.read_bytes() == (local_results / f.relative_to(results)).read_bytes() for f in figures] \
        == [True] * len(figures), figures
    # The run's index links the same files (its text also holds the overrides and
    # the jobs' measured wall times, which differ).
    (run,) = (results / "runs").iterdir()
    assert run.name == local_run.name
    links = [re.findall(r"\]\(([^)]+)\)", (d / "index.md").read_text()) for d in (run, local_run)]
    assert links[0] == links[1] and len(links[0]) >= 20, links


@pytest.fixture(scope="module")
def failing_run(slurm, tmp_path_factory):
    """The run of test_failing_job_fails_the_dag_with_its_log_after_one_retry,
    started with the module's first test so that it runs beside that test's
    run: (run, paths). A corrupt dataset passes planning (it exists) and fails
    the workloads job."""
    tmp = tmp_path_factory.mktemp("failing")
    bad = tmp / "sharegpt.json"
    bad.write_text('[{"id": "x", "conversations": [')  # cut off before any complete record
    overrides = [*TINY, f"results_dir={tmp / 'results'}", f"dataset.path={bad}"]
    paths = PipelinePaths(compose_config(overrides))
    run = SlurmRun(slurm, overrides, [paths.workload_stream("qa")], tmp / "slurm_logs")
    try:
        yield run, paths
    finally:
        run.stop()


def test_failing_job_fails_the_dag_with_its_log_after_one_retry(failing_run):
    """The DAG stops after the profile's one retry and shows the rule's log."""
    run, paths = failing_run
    code, out = run.finish()
    assert code != 0
    jobs = sorted(run.jobs(), key=lambda j: int(j["JobId"]))
    assert [rule_of(j) for j in jobs] == ["workload", "workload"], jobs  # first attempt + one retry
    assert all(j["JobState"] == "FAILED" for j in jobs)
    assert "Error in rule workload" in out
    log = paths.stage("workloads") / "logs" / "qa.log"
    assert log.exists() and log.read_text().strip()
    assert f"Logfile {log}:" in out
    assert log.read_text().strip().splitlines()[-1] in out
