"""The pure-Python block hash equals vLLM's `hash_block_tokens` (engine tier:
they import vLLM), and the traces stage runs without importing vLLM or torch."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import polars as pl
import pytest

from prefix_study.traces import block_hash
from prefix_study.traces.block_hash import chained_block_hashes
from prefix_study.traces.schema import PREFIX_HASH_ALGO


def vllm_chain(tokens: list[int], block_size: int, seed: str) -> list[bytes]:
    """Full digests of every full block, chained with vLLM's own functions."""
    from vllm.utils.hashing import get_hash_fn_by_name  # a missing vLLM is an error
    from vllm.v1.core import kv_cache_utils

    fn = get_hash_fn_by_name(PREFIX_HASH_ALGO)
    parent = fn(seed)
    out = []
    for start in range(0, len(tokens) - block_size + 1, block_size):
        parent = kv_cache_utils.hash_block_tokens(fn, parent, tokens[start:start + block_size])
        out.append(parent)
    return out


@pytest.mark.engine  # imports vLLM (~10 s)
@pytest.mark.parametrize("block_size", [1, 16, 32, 48, 64, 512])
@pytest.mark.parametrize("seed", ["0", "vllm-none-hash", "prefix-study-7"])
def test_chained_hashes_equal_vllms(block_size, seed):
    rng = random.Random(f"{block_size}-{seed}")
    for _ in range(5):
        tokens = [rng.randrange(0, 200_000) for _ in range(rng.randrange(0, 4 * block_size + 7))]
        expected = [int.from_bytes(h, "big") & ((1 << 64) - 1) for h in vllm_chain(tokens, block_size, seed)]
        assert chained_block_hashes(tokens, block_size, seed) == expected
        assert len(expected) == len(tokens) // block_size


@pytest.mark.engine  # imports vLLM (~10 s)
def test_single_steps_equal_vllms_including_extra_keys():
    from vllm.utils.hashing import sha256 as vllm_sha256  # a missing vLLM is an error
    from vllm.v1.core import kv_cache_utils

    rng = random.Random(3)
    none_hash = block_hash.sha256("0")
    assert none_hash == vllm_sha256("0")
    for extra in (None, ("lora-a",), (("mm", 3),)):
        tokens = [rng.randrange(50_000) for _ in range(32)]
        parent = bytes(rng.randrange(256) for _ in range(32))
        for p in (parent, None):
            expected = kv_cache_utils.hash_block_tokens(vllm_sha256, p or none_hash, tokens, extra)
            assert block_hash.hash_block_tokens(p, tokens, none_hash, extra) == expected


def test_only_sha256_is_implemented():
    with pytest.raises(ValueError, match="sha256"):
        chained_block_hashes([1, 2, 3, 4], 2, "0", algo="xxhash")


def test_traces_stage_does_not_import_vllm_or_torch(tmp_path):
    """The traces command on a small engine run, in a fresh interpreter."""
    engine = tmp_path / "engine" / "w" / "b32"
    engine.mkdir(parents=True)
    rng = random.Random(0)
    prompt = [rng.randrange(50_000) for _ in range(70)]
    pl.DataFrame({
        "request_id": ["r0", "r1"], "workload": ["w", "w"], "scheduled_s": [0.0, 1.0],
        "scheduled_step": [0, 5], "prompt_token_ids": [prompt, prompt + [7] * 40],
        "output_token_ids": [[1, 2, 3], [4, 5]], "num_cached_tokens": [0, 64],
    }).write_parquet(engine / "requests.parquet")
    (engine / "run.json").write_text(json.dumps({"block_size": 32, "none_hash_seed": "0",
                                                 "prefix_hash_algo": PREFIX_HASH_ALGO}))
    cfg = tmp_path / "config.yaml"
    # A resolved run config (as the rules write it) with one workload `w`.
    from omegaconf import OmegaConf

    from prefix_study.config.compose import compose_config

    resolved = OmegaConf.to_container(compose_config([]), resolve=True, enum_to_str=True)
    resolved["workloads"] = {"w": resolved["workloads"]["chat_multi"]}
    resolved["mix"]["cache_friendly"] = []
    resolved["cost"]["compare_workloads"] = []  # names only configured ShareGPT workloads
    cfg.write_text(OmegaConf.to_yaml(resolved))
    out = tmp_path / "b16.parquet"
    code = (
        "import sys\n"
        "from prefix_study.stages import Job, run_job\n"
        f"run_job(Job('traces', input={{'cfg': {str(cfg)!r}}}, output={{'trace': {str(out)!r}, "
        f"'check': {str(tmp_path / 'c.json')!r}}}, params={{'run': 'w', 'block_size': 16, "
        f"'engine_dir': {str(engine)!r}}}))\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('vllm', 'torch'))\n"
        "assert not heavy, heavy[:5]\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    trace = pl.read_parquet(out)
    assert trace.height == (70 + 2) // 16 + (110 + 1) // 16
    assert trace["block_hash"].to_list()[:4] == chained_block_hashes(prompt + [1, 2], 16, "0")
