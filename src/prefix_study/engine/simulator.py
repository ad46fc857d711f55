"""The token simulator: a vLLM V1 logits processor that forces output tokens.

The course project forked vLLM to replace sampling; here a custom logits
processor masks every logit but the scripted one, so the engine still runs
its real forward passes and real KV cache and only the choice of the next
token is forced. Modes, per request via `SamplingParams.extra_args`:

- ``echo``: output token i is prompt token i (one per step);
- ``script``: output token i is the i-th token of a given list (the dataset's
  reply), so a follow-up turn reuses the reply's KV blocks exactly;
- ``model``: no forcing (the model's own greedy choice).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from vllm import SamplingParams

from prefix_study.config.schema import SIMULATOR_MODES
from vllm.v1.sample.logits_processor import AdapterLogitsProcessor

MODE_KEY = "prefix_study_mode"
SCRIPT_KEY = "prefix_study_script"


def _force(logits: torch.Tensor, token_id: int) -> torch.Tensor:
    forced = torch.full_like(logits, float("-inf"))
    forced[token_id] = 0.0
    return forced


def echo_processor() -> Callable[[list[int], list[int], torch.Tensor], torch.Tensor]:
    def force_prompt_token(prompt_ids: list[int], output_ids: list[int],
                           logits: torch.Tensor) -> torch.Tensor:
        step = len(output_ids)
        return _force(logits, prompt_ids[step]) if step < len(prompt_ids) else logits

    return force_prompt_token


def script_processor(script: Sequence[int]) -> Callable[[list[int], torch.Tensor], torch.Tensor]:
    script = [int(t) for t in script]

    def force_script_token(output_ids: list[int], logits: torch.Tensor) -> torch.Tensor:
        step = len(output_ids)
        return _force(logits, script[step]) if step < len(script) else logits

    return force_script_token


class TokenSimulator(AdapterLogitsProcessor):
    """Per-request forcing of output tokens (echo / script / model)."""

    def is_argmax_invariant(self) -> bool:
        return False  # it changes the argmax: greedy sampling must see it

    def new_req_logits_processor(self, params: SamplingParams):
        extra = params.extra_args or {}
        mode = extra.get(MODE_KEY, "model")
        if mode == "echo":
            return echo_processor()
        if mode == "script":
            return script_processor(extra[SCRIPT_KEY])
        if mode == "model":
            return None
        raise ValueError(f"token simulator mode {mode!r}: allowed {list(SIMULATOR_MODES)}")


def simulator_params(mode: str, prompt_len: int, script: Sequence[int] | None = None,
                     max_tokens: int | None = None) -> SamplingParams:
    """Greedy sampling params that make the simulator produce the wanted tokens."""
    extra: dict[str, Any] = {MODE_KEY: mode}
    if mode == "echo":
        n = prompt_len if max_tokens is None else min(max_tokens, prompt_len)
    elif mode == "script":
        if script is None or len(script) == 0:
            raise ValueError("script mode needs a non-empty token list")
        extra[SCRIPT_KEY] = [int(t) for t in script]
        n = len(script) if max_tokens is None else min(max_tokens, len(script))
    elif mode == "model":
        n = max_tokens or 16
    else:
        raise ValueError(f"token simulator mode {mode!r}: allowed {list(SIMULATOR_MODES)}")
    return SamplingParams(temperature=0.0, max_tokens=max(1, n), ignore_eos=True,
                          extra_args=extra, detokenize=True)
