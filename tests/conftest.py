"""Shared fixtures: a tiny random-weight GPT-2, real CPU vLLM engines, and one
run of the whole DAG on a tiny config through `prefix-study` (`tiny`).

Engine tests import vLLM directly: without it they error, never skip.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from prefix_study import env

env.apply()  # before vLLM is imported anywhere


@pytest.fixture(scope="module")
def zipf_trace():
    """Independent Zipf block ids, short requests: no prefix structure."""
    import numpy as np

    from prefix_study.replay import encode_trace
    from prefix_study.replay.synthetic import trace_from_requests

    rng = np.random.default_rng(7)
    n = 12_000
    ids = (rng.zipf(1.2, n) % 2_000).astype(np.int64)
    return encode_trace(trace_from_requests([ids[i:i + 6].tolist() for i in range(0, n, 6)], chain=False))


@pytest.fixture(scope="module")
def prefix_trace():
    """Synthetic conversations with shared prefixes (replay/synthetic.py)."""
    from prefix_study.replay import encode_trace
    from prefix_study.replay.synthetic import SyntheticTraceConfig, synthetic_trace

    return encode_trace(synthetic_trace(SyntheticTraceConfig(num_requests=400, seed=3)))


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    from prefix_study.assets.model import build_model_dir

    return build_model_dir(tmp_path_factory.mktemp("model") / "tiny", shape="tiny", seed=0,
                           n_positions=2048)


@pytest.fixture(scope="session")
def engine_factory(model_dir):
    """Engines cached for the session, one per setting. Never let an engine be
    garbage-collected mid-session: vLLM then tears down its process-wide
    distributed state and every other engine in the process stops working."""
    from dataclasses import replace

    from prefix_study.config.schema import EngineConfig
    from prefix_study.engine import EngineSpec, build_engine

    cache = {}

    def make(block_size=32, prefix_caching=True, capacity_blocks=1024, max_model_len=2048,
             max_num_seqs=16, eviction="lru", cache_friendly=()):
        key = (block_size, prefix_caching, capacity_blocks, max_model_len, max_num_seqs, eviction,
               tuple(cache_friendly))
        if key not in cache:
            spec = EngineSpec.from_config(EngineConfig(
                prefix_caching=prefix_caching, capacity_blocks=capacity_blocks,
                max_model_len=max_model_len, max_num_seqs=max_num_seqs,
                max_num_batched_tokens=max_model_len, eviction=eviction), model_dir, block_size)
            cache[key] = build_engine(replace(spec, cache_friendly=tuple(cache_friendly)))
        engine = cache[key]
        engine.reset()
        return engine

    return make


# --- the whole DAG on a tiny config, through the command ------------------------------

ROOT = Path(__file__).resolve().parents[1]
CLI = Path(sys.executable).parent / "prefix-study"
TIMEOUT = 900

#: A configuration that runs the full DAG in about a minute on 2 cores.
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


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """The full DAG on TINY, once for the session (test_pipeline, test_reliability):
    (overrides, results dir, run dir). Tests that change its files restore them."""
    from prefix_study.config.hashing import STAGES

    results = tmp_path_factory.mktemp("pipeline") / "results"
    overrides = [*TINY, f"results_dir={results}"]
    proc = prefix_study(*overrides, "--cores", "2")
    assert proc.returncode == 0, proc.stderr[-5000:]
    (run,) = run_dirs(proc.stdout)
    run = run if run.is_absolute() else ROOT / run
    for stage in (*STAGES, "runs"):
        assert len(list((results / stage).iterdir())) == 1, stage
    return overrides, results, run
