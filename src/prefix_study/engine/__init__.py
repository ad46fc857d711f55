"""The CPU vLLM engine: build it, force its tokens, drive workloads through it."""

from prefix_study.engine.driver import ClockModel, DriveResult, drive
from prefix_study.engine.requests import RequestStreamError, check_request_stream
from prefix_study.engine.runtime import Engine, EngineSpec, build_engine
from prefix_study.engine.simulator import TokenSimulator, simulator_params

__all__ = [
    "ClockModel", "DriveResult", "Engine", "EngineSpec", "RequestStreamError",
    "TokenSimulator", "build_engine", "check_request_stream", "drive", "simulator_params",
]


def generate(engine: Engine, prompts: list[list[int]], mode: str = "echo",
             scripts: list[list[int]] | None = None) -> list:
    """Plain batch generation through the simulator (used by tests and benches)."""
    params = [simulator_params(mode, len(p), None if scripts is None else scripts[i])
              for i, p in enumerate(prompts)]
    return engine.llm.generate([{"prompt_token_ids": p} for p in prompts], params, use_tqdm=False)
