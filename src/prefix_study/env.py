"""The process environment every prefix-study process runs with (one home).

The Snakefile, the `prefix-study` command, the engine runtime and the tests'
conftest call `apply()` before vLLM is imported anywhere, and Snakemake's jobs
inherit the result. A value already set in the environment wins.
"""

from __future__ import annotations

import os
from typing import Mapping, MutableMapping

#: Variable -> value, and why.
RUNTIME_ENV: Mapping[str, str] = {
    # Fixed str hashing in every job; vLLM also derives its NONE_HASH seed from it.
    "PYTHONHASHSEED": "0",
    # No model or dataset hub is contacted at run time.
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    # The engine runs in process (its scheduler is observed directly).
    "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
    # GiB of CPU KV cache space vLLM reserves (the tiny model needs little).
    "VLLM_CPU_KVCACHE_SPACE": "4",
    # One OpenMP thread per process, as the engine rules declare (`threads: 1`):
    # torch's default of one per core oversubscribes the cores that Snakemake's
    # other jobs (or the other test worker) use, and the tiny model gains
    # nothing from more. tests/test_engine_eviction.py alone on the idle 2-core
    # machine: 51.4 -> 37.0 CPU-s, 40.1 -> 36.9 s.
    "OMP_NUM_THREADS": "1",
}


def apply(environ: MutableMapping[str, str] | None = None) -> MutableMapping[str, str]:
    """Set every RUNTIME_ENV variable that is not set yet; returns the mapping."""
    environ = os.environ if environ is None else environ
    for key, value in RUNTIME_ENV.items():
        environ.setdefault(key, value)
    return environ
