"""The CPU vLLM engine: build it, force its tokens, drive workloads through it.

vLLM (and torch) load with the simulator, on first use of `TokenSimulator` or
`simulator_params` or on `build_engine`, not with this package: importing
vLLM takes 5-10 s, which a module that only names these functions (a test
module being collected) should not pay."""

from typing import Any

from prefix_study.engine.driver import ClockModel, DriveResult, drive
from prefix_study.engine.requests import RequestStreamError, check_request_stream
from prefix_study.engine.runtime import Engine, EngineSpec, build_engine

__all__ = [
    "ClockModel", "DriveResult", "Engine", "EngineSpec", "RequestStreamError",
    "TokenSimulator", "build_engine", "check_request_stream", "drive", "simulator_params",
]


def __getattr__(name: str) -> Any:
    if name in ("TokenSimulator", "simulator_params"):
        from prefix_study.engine import simulator

        return getattr(simulator, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def generate(engine: Engine, prompts: list[list[int]], mode: str = "echo",
             scripts: list[list[int]] | None = None) -> list:
    """Plain batch generation through the simulator (used by tests and benches)."""
    from prefix_study.engine.simulator import simulator_params

    params = [simulator_params(mode, len(p), None if scripts is None else scripts[i])
              for i, p in enumerate(prompts)]
    return engine.llm.generate([{"prompt_token_ids": p} for p in prompts], params, use_tqdm=False)
