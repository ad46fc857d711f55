"""Running the `prefix-study` command from tests: the tiny configuration, the
command itself and readers of its output (shared by test_pipeline.py,
test_reliability.py and the session-scoped `tiny_run` fixture in conftest.py)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI = Path(sys.executable).parent / "prefix-study"
TIMEOUT = 900

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
    """Run the installed console command; its output is shown when a test fails."""
    assert CLI.exists(), f"{CLI} missing: install the project (pip install -e .)"
    proc = subprocess.run([str(CLI), *args], cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT)
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
