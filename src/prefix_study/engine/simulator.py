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

from typing import Any, Sequence

import torch
from vllm import SamplingParams

from prefix_study.config.schema import SIMULATOR_MODES
from vllm.v1.sample.logits_processor import AdapterLogitsProcessor

MODE_KEY = "prefix_study_mode"
SCRIPT_KEY = "prefix_study_script"


def force_row(logits: torch.Tensor, token: int | None) -> torch.Tensor:
    """One row: -inf everywhere but `token` (0); unchanged when None."""
    if token is None:
        return logits
    forced = torch.full_like(logits, float("-inf"))
    forced[token] = 0.0
    return forced


class EchoedToken:
    """Output token i is prompt token i (vLLM passes prompt and output ids)."""

    def next_token(self, prompt_ids: list[int], output_ids: list[int]) -> int | None:
        step = len(output_ids)
        return prompt_ids[step] if step < len(prompt_ids) else None

    def __call__(self, prompt_ids: list[int], output_ids: list[int], logits: torch.Tensor) -> torch.Tensor:
        return force_row(logits, self.next_token(prompt_ids, output_ids))


class ScriptedToken:
    """Output token i is the i-th token of the script (the dataset's reply)."""

    def __init__(self, script: Sequence[int]):
        self.script = [int(t) for t in script]

    def next_token(self, output_ids: list[int]) -> int | None:
        step = len(output_ids)
        return self.script[step] if step < len(self.script) else None

    def __call__(self, output_ids: list[int], logits: torch.Tensor) -> torch.Tensor:
        return force_row(logits, self.next_token(output_ids))


class TokenSimulator(AdapterLogitsProcessor):
    """Per-request forcing of output tokens (echo / script / model)."""

    def is_argmax_invariant(self) -> bool:
        return False  # it changes the argmax: greedy sampling must see it

    def new_req_logits_processor(self, params: SamplingParams):
        extra = params.extra_args or {}
        mode = extra.get(MODE_KEY, "model")
        if mode == "echo":
            return EchoedToken()
        if mode == "script":
            return ScriptedToken(extra[SCRIPT_KEY])
        if mode == "model":
            return None
        raise ValueError(f"token simulator mode {mode!r}: allowed {list(SIMULATOR_MODES)}")

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        """Every forced row at once: -inf everywhere but its token (0).

        The same logits, row for row, as applying each request's processor
        (AdapterLogitsProcessor.apply); vLLM keeps a request's state as a
        partial over its live output-token list (`req_info`). Calling each
        request's rule in Python with a full-vocabulary tensor per row took a
        third of the engine's time."""
        rows: list[int] = []
        tokens: list[int] = []
        for row, lp in self.req_info.items():
            token = lp.func.next_token(*lp.args)
            if token is not None:
                rows.append(row)
                tokens.append(token)
        if rows:
            index = torch.tensor(rows, dtype=torch.long, device=logits.device)
            logits[index] = float("-inf")
            logits[index, torch.tensor(tokens, dtype=torch.long, device=logits.device)] = 0.0
        return logits


def simulator_args(mode: str, prompt_len: int, script: Sequence[int] | None = None,
                   max_tokens: int | None = None) -> tuple[dict[str, Any], int]:
    """The simulator's per-request arguments (`extra_args`, which a server
    request carries as `vllm_xargs`) and the output length they force."""
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
    return extra, max(1, n)


def simulator_params(mode: str, prompt_len: int, script: Sequence[int] | None = None,
                     max_tokens: int | None = None) -> SamplingParams:
    """Greedy sampling params that make the simulator produce the wanted tokens."""
    extra, n = simulator_args(mode, prompt_len, script, max_tokens)
    return SamplingParams(temperature=0.0, max_tokens=n, ignore_eos=True,
                          extra_args=extra, detokenize=True)
