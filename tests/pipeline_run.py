"""Running the `prefix-study` command from tests: the tiny configuration, the
command itself and readers of its output (shared by test_pipeline.py,
test_reliability.py and the session-scoped `tiny_run` fixture in conftest.py)."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: The installed console command (the SLURM test and the tests of killed runs start it).
CLI = Path(sys.executable).parent / "prefix-study"

#: A configuration that runs the full DAG, an engine capacity sweep at a
#: binding capacity included, in a few minutes on 2 cores.
TINY = [
    "sweep=tiny",
    "workloads.chat_single.num_conversations=4",
    "workloads.chat_multi.num_conversations=3",
    "workloads.chat_multi.max_turns=2",
    "workloads.qa.num_conversations=6",
    "workloads.qa.num_contexts=2",
    "workloads.summarization.num_conversations=2",
    "engine.block_sizes=[32]",
    "mix.block_size=32",
    "mix.capacities=[64]",
    "dataset.max_conversations=200",
]
#: The engine capacity sweep of the shared run (tiny_run).
TINY_ENGINE_CAPACITIES = "engine.capacities=[129]"
UPSTREAM_RULES = {"assets", "workload", "engine_run", "block_trace", "engine_block_trace"}


def prefix_study(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """`prefix-study ARGS` run from `cwd`: the console command's main() in this
    process (what the installed script calls, without a Python start-up, its
    imports and a config composition each time: ~3 s of every call). Its output
    and its Snakemake's are read at file descriptors 1 and 2, as from the
    command, and shown when a test fails."""
    from prefix_study.cli import main

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, contextlib.chdir(cwd):
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        stdout = open(1, "w", buffering=1, closefd=False)
        stderr = open(2, "w", buffering=1, closefd=False)
        try:
            with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
                try:
                    code = main(list(args))
                except SystemExit as exc:  # argparse's usage errors
                    code = exc.code if isinstance(exc.code, int) else 2
        finally:
            stdout.flush()
            stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
        out.seek(0)
        err.seek(0)
        proc = subprocess.CompletedProcess(["prefix-study", *args], code, out.read().decode(),
                                           err.read().decode())
    print(f"$ prefix-study {' '.join(args)}\n[exit {proc.returncode}]\n{proc.stdout}\n{proc.stderr}")
    return proc


def job_stats(output: str) -> dict[str, int]:
    """Snakemake's "Job stats" table -> {rule: count} (empty when nothing is to be done)."""
    if "Nothing to be done" in output:
        return {}
    assert "Job stats:" in output, output[-3000:]
    table = output.split("Job stats:", 1)[1]
    counts = {}
    for line in table.splitlines()[3:]:
        m = re.fullmatch(r"(\w+)\s+(\d+)", line.strip())
        if not m or m.group(1) == "total":
            break
        counts[m.group(1)] = int(m.group(2))
    assert counts, table[:2000]
    return counts


def run_dirs(stdout: str) -> list[Path]:
    return [Path(line.split("run directory:", 1)[1].strip())
            for line in stdout.splitlines() if "run directory:" in line]
