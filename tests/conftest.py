"""Shared fixtures: a tiny random-weight GPT-2, real CPU vLLM engines, and one
run of the whole DAG (`tiny_run`) that every pipeline test reads or extends.

Engine tests import vLLM at set-up (`_engine_tests_import_vllm`), never at a
module's top: without it they error, never skip.
Markers (pyproject.toml): `engine` runs or imports vLLM, `pipeline` runs the
`prefix-study` command (Snakemake), `slurm` needs SLURM; `make test-fast`
runs the rest.

`make test` runs on two pytest-xdist workers (`--dist loadfile`: a test
file stays on one worker, so its module fixtures, such as a `vllm serve` or
the SLURM test cluster, start once). The engines are built by each worker
that needs them; `tiny_run` once per session, by the first worker that asks
(a file lock). No test changes it: a test that runs Snakemake on the shared
run gets its own copy (`tiny_copy`), so such tests run on both workers at once.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from prefix_study import env

env.apply()  # before vLLM is imported anywhere


@pytest.fixture(autouse=True)
def _engine_tests_import_vllm(request):
    """A test marked `engine` errors when vLLM is missing, never skips. vLLM is
    imported here, at set-up, not at a test module's top: collecting it costs
    5-14 s, which every xdist worker of `make test-fast` would pay for nothing."""
    if request.node.get_closest_marker("engine") is not None:
        import vllm  # noqa: F401


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
    """Engines cached for the session, one per setting (`cpu_offload`: an
    engine.runtime.CpuOffload, vLLM's CPU tier). Never let an engine be
    garbage-collected mid-session: vLLM then tears down its process-wide
    distributed state and every other engine in the process stops working."""
    from dataclasses import replace

    from prefix_study.config.schema import EngineConfig
    from prefix_study.engine import EngineSpec, build_engine

    cache = {}

    def make(block_size=32, prefix_caching=True, capacity_blocks=1024, max_model_len=2048,
             max_num_seqs=16, eviction="lru", cache_friendly=(), cpu_offload=None):
        key = (block_size, prefix_caching, capacity_blocks, max_model_len, max_num_seqs, eviction,
               tuple(cache_friendly), cpu_offload)
        if key not in cache:
            spec = EngineSpec.from_config(EngineConfig(
                prefix_caching=prefix_caching, capacity_blocks=capacity_blocks,
                max_model_len=max_model_len, max_num_seqs=max_num_seqs,
                max_num_batched_tokens=max_model_len, eviction=eviction), model_dir, block_size)
            cache[key] = build_engine(replace(spec, cache_friendly=tuple(cache_friendly), cpu_offload=cpu_offload))
        engine = cache[key]
        engine.reset()
        return engine

    return make


#: The longest units of work, started first (the SLURM test runs the DAG through its
#: cluster while the other worker builds `tiny_run`, which it compares with after), then
#: the longest files of `make test-fast` (so no long file starts last).
LONG_FIRST = ("tests/test_slurm.py", "tests/test_pipeline.py", "tests/test_reliability.py",
              "tests/test_workloads.py", "tests/test_figures.py", "tests/test_replay_properties.py",
              "tests/test_tiers.py")


def pytest_collection_modifyitems(config, items):
    """LONG_FIRST's files first; the order within a file is kept."""
    def rank(item) -> int:
        return next((i for i, f in enumerate(LONG_FIRST) if item.nodeid.startswith(f)), len(LONG_FIRST))
    items.sort(key=rank)


def pytest_xdist_make_scheduler(config, log):
    """`--dist loadfile` in collection order (LONG_FIRST first; not xdist's
    largest-file-first)."""
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    config.option.loadscopereorder = False
    return LoadFileScheduling(config, log)


def _shared_tmp(tmp_path_factory) -> Path:
    """A directory every xdist worker of this session sees (the session's own without xdist)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """The full DAG on pipeline_run.TINY (with an engine capacity sweep), once
    per session, whichever worker asks first: (overrides, results dir, run
    dir). Its results_dir has a space in it (issue 23.4: paths reach the
    stages without a shell). Tests read it and plan on it (`-n`); a test that
    runs jobs takes `tiny_copy`."""
    from filelock import FileLock

    from pipeline_run import ROOT, TINY, TINY_ENGINE_CAPACITIES, prefix_study, run_dirs

    from prefix_study.config.compose import compose_config
    from prefix_study.pipeline import PipelinePaths

    shared = _shared_tmp(tmp_path_factory)
    results = shared / "pipeline" / "tiny results"
    overrides = [*TINY, TINY_ENGINE_CAPACITIES, f"results_dir={results}"]
    built = shared / "pipeline" / "tiny run.json"
    with FileLock(shared / "pipeline.lock"):
        if not built.exists():
            results.parent.mkdir(exist_ok=True)
            proc = prefix_study(*overrides, "--cores", "2")
            assert proc.returncode == 0, proc.stderr[-5000:]
            (run,) = run_dirs(proc.stdout)
            run = run if run.is_absolute() else ROOT / run
            for stage in (*PipelinePaths(compose_config(overrides)).stages_run, "runs"):
                assert len(list((results / stage).iterdir())) == 1, stage
            built.write_text(json.dumps({"run": str(run)}))
    return overrides, results, Path(json.loads(built.read_text())["run"])


@pytest.fixture
def tiny_copy(tiny_run, tmp_path):
    """(overrides, results dir, run dir) of a copy of the shared run (files
    and their times; ~40 MB) in this test's own directory, for a test that
    runs jobs on it. Snakemake plans on the copy as on the original: nothing
    is to be done until the test changes something."""
    overrides, results, run = tiny_run
    copy = tmp_path / results.name
    shutil.copytree(results, copy, symlinks=True)
    moved = [o for o in overrides if not o.startswith("results_dir=")] + [f"results_dir={copy}"]
    return moved, copy, copy / run.relative_to(results)
