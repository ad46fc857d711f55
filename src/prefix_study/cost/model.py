"""A roofline cost model of one engine step on a named model and GPU.

Notation: N = model.num_params (active), L layers, H attention heads, d =
head_dim, b = KV bytes per token, w = bytes per weight (2 for bf16, 1 for
fp8), peak = hardware peak FLOP/s at `precision` x num_gpus, bw = memory
bandwidth x num_gpus, e_c / e_m the compute and memory efficiencies.

- A prefill chunk of n new tokens after c cached (or already computed) ones:
    linear FLOPs    = 2 N n
    attention FLOPs = 4 L H d * sum_{i=c}^{c+n-1} (i+1)      (causal: QK^T and PV)
                    = 4 L H d * ((c+n)(c+n+1) - c(c+1)) / 2
    bytes           = N w + (c+n) b                         (weights, KV read/written)
- A decode batch over k context tokens in total (B requests):
    FLOPs = 2 N B + 4 L H d k;   bytes = N w + k b
- One step runs everything scheduled in it as one forward pass:
    time = overhead + max(FLOPs / (peak e_c), bytes / (bw e_m))
  so a long prefill is compute-bound, a decode batch memory-bound, and the
  weights are read once per step however many requests share it.
- TTFT of a request alone (no queueing, whole prompt in one step):
    step_time([(P - C, C)], [])  for P prompt tokens, C served from cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from prefix_study.cost.profiles import HardwareProfile, ModelProfile

WEIGHT_BYTES = {"bf16": 2, "fp8": 1}


@dataclass(frozen=True)
class CostModel:
    model: ModelProfile
    hardware: HardwareProfile
    precision: str = "bf16"
    #: Tensor-parallel GPUs: peak FLOP/s and bandwidth scale with it.
    num_gpus: int = 1
    compute_efficiency: float = 0.5
    memory_efficiency: float = 0.8
    step_overhead_s: float = 0.005

    # --- FLOPs and bytes ---------------------------------------------------
    def linear_flops(self, new_tokens: int) -> float:
        return 2.0 * self.model.num_params * new_tokens

    # The FLOP, byte and time functions take numbers or numpy arrays (one
    # entry per request).
    def attention_flops(self, new_tokens: Any, context_tokens: Any) -> Any:
        """Causal attention of `new_tokens` that follow `context_tokens`."""
        c = np.asarray(context_tokens, dtype=np.float64)
        p = c + np.asarray(new_tokens, dtype=np.float64)
        pairs = (p * (p + 1) - c * (c + 1)) / 2.0
        m = self.model
        return 4.0 * m.num_layers * m.num_attention_heads * m.head_dim * pairs

    def prefill_flops(self, prompt_tokens: Any, cached_tokens: Any) -> Any:
        """FLOPs to prefill a prompt of which `cached_tokens` come from cache."""
        new = np.asarray(prompt_tokens, dtype=np.float64) - np.asarray(cached_tokens, dtype=np.float64)
        return self.linear_flops(new) + self.attention_flops(new, cached_tokens)

    def weight_bytes(self) -> float:
        return float(self.model.num_params * WEIGHT_BYTES[self.precision])

    # --- time --------------------------------------------------------------
    def _roofline(self, flops: Any, bytes_moved: Any) -> Any:
        peak = self.hardware.peak_flops(self.precision) * self.num_gpus * self.compute_efficiency
        bw = self.hardware.mem_bandwidth_bytes_s * self.num_gpus * self.memory_efficiency
        return np.maximum(np.divide(flops, peak), np.divide(bytes_moved, bw))

    def compute_time_s(self, flops: Any) -> Any:
        """Time of `flops` at the achievable FLOP rate: the marginal cost of
        work added to a compute-bound batch, whose weight read is shared."""
        return np.divide(flops, self.hardware.peak_flops(self.precision) * self.num_gpus * self.compute_efficiency)

    def prefill_time_s(self, prompt_tokens: Any, cached_tokens: Any) -> Any:
        """Forward-pass time of one prefill (no step overhead)."""
        flops = self.prefill_flops(prompt_tokens, cached_tokens)
        kv = np.asarray(prompt_tokens, dtype=np.float64) * self.model.kv_bytes_per_token()
        return self._roofline(flops, self.weight_bytes() + kv)

    def decode_step_time_s(self, batch_size: int, context_tokens: int) -> float:
        """Forward-pass time of one decode step of `batch_size` requests that
        read `context_tokens` KV entries in total (no step overhead)."""
        m = self.model
        flops = self.linear_flops(batch_size) + 4.0 * m.num_layers * m.num_attention_heads * m.head_dim \
            * context_tokens
        return self._roofline(flops, self.weight_bytes() + context_tokens * m.kv_bytes_per_token())

    def step_time_s(self, prefill: Sequence[tuple[int, int]], decode_context_tokens: Sequence[int]) -> float:
        """One engine step: `prefill` = (new_tokens, cached_context) per chunk,
        `decode_context_tokens` = context length per decoding request."""
        if not prefill and not decode_context_tokens:
            return self.step_overhead_s
        m = self.model
        kv = m.kv_bytes_per_token()
        flops = 0.0
        kv_bytes = 0.0
        for new, ctx in prefill:
            flops += self.linear_flops(new) + self.attention_flops(new, ctx)
            kv_bytes += (new + ctx) * kv
        k = sum(int(c) for c in decode_context_tokens)
        flops += self.linear_flops(len(decode_context_tokens)) \
            + 4.0 * m.num_layers * m.num_attention_heads * m.head_dim * k
        kv_bytes += k * kv
        return float(self.step_overhead_s + self._roofline(flops, self.weight_bytes() + kv_bytes))

    def ttft_s(self, prompt_tokens: Any, cached_tokens: Any) -> Any:
        """Time to first token of a request alone: one step prefilling it
        (= step_time_s([(P - C, C)], []))."""
        return self.step_overhead_s + self.prefill_time_s(prompt_tokens, cached_tokens)

    @classmethod
    def from_config(cls, cfg: Any) -> "CostModel":
        """cfg: a composed config with `model`, `hardware` and `cost` sections."""
        c = cfg.cost
        return cls(
            model=ModelProfile.from_config(cfg.model), hardware=HardwareProfile.from_config(cfg.hardware),
            precision=str(c.precision), num_gpus=int(c.num_gpus),
            compute_efficiency=float(c.compute_efficiency), memory_efficiency=float(c.memory_efficiency),
            step_overhead_s=float(c.step_overhead_s),
        )
