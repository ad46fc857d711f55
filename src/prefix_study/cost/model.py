"""A roofline cost model of one engine step on a named model and GPU(s).

Notation: L layers, H attention heads, d_qk / d_v the per-head widths of q.k
and of V (MLA: 192 / 128), h hidden size, b = KV bytes per token, w = bytes
per weight (2 for bf16, 1 for fp8), N tensor-parallel GPUs, peak / bw one
GPU's FLOP/s at `precision` and memory bandwidth, e_c / e_m the fractions of
them an engine reaches on that GPU and precision (conf/hardware/*.yaml).

Parameters (ModelProfile): the embedding table is a lookup (no FLOPs, only
the looked-up rows are read); `body` = activated parameters of the decoder
layers (num_params minus embedding and untied LM head); `head` = vocab x h.

- A prefill chunk of n new tokens after c cached (or already computed) ones:
    linear FLOPs    = 2 body n + 2 head              (LM head: last token only)
    attention FLOPs = 2 L H (d_qk + d_v) * sum_{i=c}^{c+n-1} (i+1)   (causal)
    bytes           = weights(n) w + (c+n) b          (weights, KV read/written)
  weights(T) = body + head for a dense model; for MoE the shared weights plus
  the routed experts T tokens touch: E (1 - (1 - k/E)^T) of E (top-k).
- A decode batch of B requests over k context tokens in total:
    FLOPs = B (2 body + 2 head) + 2 L H (d_qk + d_v) k;  bytes = weights(B) w + k b
- One step runs everything scheduled in it as one forward pass of T tokens:
    time = overhead [+ prefill overhead] + max(FLOPs / (N peak e_c r(T)), bytes / (N bw e_m))
           + comm(T),   r(T) = T / (T + T_half)  (small-M GEMMs reach less of peak)
    comm(T) = 2 L [a + 2 (N-1)/N * T h 2 / link]   for N > 1, else 0
  two all-reduces per layer (after attention and after the MLP) of T x h
  bf16 activations, ring algorithm over the interconnect (`link`, one
  direction, NVLink or PCIe), each with the fixed latency `a`
  (`hardware.allreduce_latency_s`: launch and synchronisation of the GPUs).
- TTFT of a request alone (no queueing, whole prompt in one step):
    step_time([(P - C, C)], [])  for P prompt tokens, C served from cache.
- TPOT at batch B and context k per request: step_time([], [k] * B).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from prefix_study.config.schema import CostConfig
from prefix_study.cost.profiles import HardwareProfile, ModelProfile

WEIGHT_BYTES = {"bf16": 2, "fp8": 1}
#: Activations all-reduced by tensor parallelism stay 16-bit under FP8 weights.
ACTIVATION_BYTES = 2


@dataclass(frozen=True)
class CostModel:
    model: ModelProfile
    hardware: HardwareProfile
    precision: str = "bf16"
    #: Tensor-parallel GPUs: FLOP/s and bandwidth scale with N, and every
    #: layer adds two all-reduces over the interconnect.
    num_gpus: int = 1
    #: None: the hardware profile's value for `precision` (cited or fitted).
    compute_efficiency: Optional[float] = None
    memory_efficiency: Optional[float] = None
    #: Defaults: the config's (fitted on the fit set of bench/cost_model_check.py).
    step_overhead_s: float = CostConfig.step_overhead_s
    #: Extra fixed cost of a step that prefills (no CUDA graph, attention
    #: metadata of new requests, first-token sampling and return).
    prefill_overhead_s: float = CostConfig.prefill_overhead_s
    #: GEMM efficiency ramp: a forward pass over T tokens reaches
    #: T / (T + gemm_half_tokens) of `compute_efficiency` (small-M matmuls
    #: leave tensor cores idle); 0: the flat roofline.
    gemm_half_tokens: float = CostConfig.gemm_half_tokens

    def __post_init__(self) -> None:
        if self.compute_efficiency is None:
            object.__setattr__(self, "compute_efficiency", self.hardware.compute_efficiency(self.precision))
        if self.memory_efficiency is None:
            object.__setattr__(self, "memory_efficiency", self.hardware.memory_efficiency)
        if self.num_gpus > 1 and self.hardware.interconnect_bytes_s <= 0:
            raise ValueError(f"hardware {self.hardware.name}: tensor parallelism (num_gpus={self.num_gpus}) "
                             "needs interconnect_bytes_s > 0")

    # --- FLOPs and bytes ---------------------------------------------------
    # The FLOP, byte and time functions take numbers or numpy arrays (one
    # entry per request).
    def linear_flops(self, new_tokens: Any) -> Any:
        """Linear layers of a chunk of `new_tokens` tokens that ends with one
        LM-head row (a prefill chunk, or one decode token)."""
        n = np.asarray(new_tokens, dtype=np.float64)
        return 2.0 * self.model.body_params() * n + 2.0 * self.model.lm_head_params() * (n > 0)

    def attention_flops(self, new_tokens: Any, context_tokens: Any) -> Any:
        """Causal attention of `new_tokens` that follow `context_tokens`
        (q.k over d_qk and PV over d_v per head)."""
        c = np.asarray(context_tokens, dtype=np.float64)
        p = c + np.asarray(new_tokens, dtype=np.float64)
        pairs = (p * (p + 1) - c * (c + 1)) / 2.0
        return self._attention_per_pair() * pairs

    def _attention_per_pair(self) -> float:
        m = self.model
        return 2.0 * m.num_layers * m.num_attention_heads * (m.head_dim + m.pv_head_dim)

    def prefill_flops(self, prompt_tokens: Any, cached_tokens: Any) -> Any:
        """FLOPs to prefill a prompt of which `cached_tokens` come from cache."""
        new = np.asarray(prompt_tokens, dtype=np.float64) - np.asarray(cached_tokens, dtype=np.float64)
        return self.linear_flops(new) + self.attention_flops(new, cached_tokens)

    def weight_bytes(self, tokens: Any = 1) -> Any:
        """Weight bytes one forward pass over `tokens` tokens reads (all GPUs
        together): dense models the same for any T, MoE the experts touched."""
        return self.model.weight_params_read(tokens) * WEIGHT_BYTES[self.precision]

    def comm_time_s(self, tokens: Any) -> Any:
        """Tensor-parallel all-reduces of one forward pass over `tokens` tokens."""
        n = self.num_gpus
        t = np.asarray(tokens, dtype=np.float64)
        if n <= 1:
            return np.zeros_like(t)
        hw = self.hardware
        per_reduce = hw.allreduce_latency_s + 2.0 * (n - 1) / n * t * self.model.hidden_size \
            * ACTIVATION_BYTES / hw.interconnect_bytes_s
        return 2.0 * self.model.num_layers * per_reduce

    # --- time --------------------------------------------------------------
    def _roofline(self, flops: Any, bytes_moved: Any, tokens: Any) -> Any:
        t = np.maximum(np.asarray(tokens, dtype=np.float64), 1.0)
        peak = self.hardware.peak_flops(self.precision) * self.num_gpus * self.compute_efficiency \
            * t / (t + self.gemm_half_tokens)
        bw = self.hardware.mem_bandwidth_bytes_s * self.num_gpus * self.memory_efficiency
        return np.maximum(np.divide(flops, peak), np.divide(bytes_moved, bw))

    def compute_time_s(self, flops: Any) -> Any:
        """Time of `flops` at the achievable FLOP rate: the marginal cost of
        work added to a compute-bound batch, whose weight read is shared."""
        return np.divide(flops, self.hardware.peak_flops(self.precision) * self.num_gpus * self.compute_efficiency)

    def prefill_time_s(self, prompt_tokens: Any, cached_tokens: Any) -> Any:
        """Time of one prefill step without `step_overhead_s` (forward pass,
        all-reduces and `prefill_overhead_s`)."""
        new = np.asarray(prompt_tokens, dtype=np.float64) - np.asarray(cached_tokens, dtype=np.float64)
        flops = self.prefill_flops(prompt_tokens, cached_tokens)
        kv = np.asarray(prompt_tokens, dtype=np.float64) * self.model.kv_bytes_per_token()
        return self.prefill_overhead_s + self._roofline(flops, self.weight_bytes(new) + kv, new) \
            + self.comm_time_s(new)

    def decode_step_time_s(self, batch_size: Any, context_tokens: Any) -> Any:
        """Forward-pass time of one decode step of `batch_size` requests that
        read `context_tokens` KV entries in total (no step overhead)."""
        b = np.asarray(batch_size, dtype=np.float64)
        k = np.asarray(context_tokens, dtype=np.float64)
        flops = self.linear_flops(1) * b + self._attention_per_pair() * k
        bytes_moved = self.weight_bytes(b) + k * self.model.kv_bytes_per_token()
        return self._roofline(flops, bytes_moved, b) + self.comm_time_s(b)

    def tpot_s(self, context_tokens: Any, batch_size: Any = 1) -> Any:
        """Time per output token of `batch_size` requests decoding together,
        each over `context_tokens` tokens (= step_time_s([], [k] * B))."""
        b = np.asarray(batch_size, dtype=np.float64)
        return self.step_overhead_s + self.decode_step_time_s(b, b * np.asarray(context_tokens, dtype=np.float64))

    def decode_time_s(self, prompt_tokens: int, output_tokens: int, batch_size: int = 1) -> float:
        """Time of the decode steps after the first token: `output_tokens` - 1
        steps of `batch_size` requests whose context grows from prompt + 1."""
        steps = np.arange(1, max(int(output_tokens), 1), dtype=np.float64)
        return float(np.sum(self.tpot_s(prompt_tokens + steps, batch_size)))

    def step_time_s(self, prefill: Sequence[tuple[int, int]], decode_context_tokens: Sequence[int]) -> float:
        """One engine step: `prefill` = (new_tokens, cached_context) per chunk,
        `decode_context_tokens` = context length per decoding request."""
        c = self.step_constants()
        flops = kv_bytes = 0.0
        tokens = 0
        for new, ctx in prefill:
            flops, kv_bytes = add_prefill_chunk(c, flops, kv_bytes, int(new), int(ctx))
            tokens += int(new)
        return step_time(c, flops, kv_bytes, tokens, len(prefill), sum(int(k) for k in decode_context_tokens),
                         len(decode_context_tokens))

    def step_constants(self) -> tuple[float, ...]:
        """The constants `step_time` reads (STEP_CONSTANTS names them), for
        callers that time many steps in a numba loop (cluster/queue.py)."""
        m, hw = self.model, self.hardware
        moe = m.is_moe
        return (
            ROOFLINE, self.step_overhead_s, self.prefill_overhead_s, 2.0 * m.body_params(),
            2.0 * m.lm_head_params(), self._attention_per_pair(), float(m.kv_bytes_per_token()),
            float(WEIGHT_BYTES[self.precision]), float(m.body_params() + m.lm_head_params()), float(moe),
            float(m.body_params() - int(m.moe_top_k) * float(m.moe_expert_params)) if moe else 0.0,
            float(m.moe_expert_params) if moe else 0.0, float(m.moe_num_experts) if moe else 0.0,
            1.0 - float(m.moe_top_k) / float(m.moe_num_experts) if moe else 0.0, float(m.lm_head_params()),
            hw.peak_flops(self.precision) * self.num_gpus * self.compute_efficiency,
            float(self.gemm_half_tokens), hw.mem_bandwidth_bytes_s * self.num_gpus * self.memory_efficiency,
            float(self.num_gpus), hw.allreduce_latency_s, float(m.hidden_size), float(ACTIVATION_BYTES),
            hw.interconnect_bytes_s, 2.0 * m.num_layers,
        )

    def ttft_s(self, prompt_tokens: Any, cached_tokens: Any) -> Any:
        """Time to first token of a request alone: one step prefilling it
        (= step_time_s([(P - C, C)], []))."""
        return self.step_overhead_s + self.prefill_time_s(prompt_tokens, cached_tokens)

    @classmethod
    def from_config(cls, cfg: Any) -> "CostModel":
        """cfg: a composed config with `model`, `hardware` and `cost` sections."""
        c = cfg.cost
        ce, me = c.get("compute_efficiency"), c.get("memory_efficiency")
        return cls(
            model=ModelProfile.from_config(cfg.model), hardware=HardwareProfile.from_config(cfg.hardware),
            precision=str(c.precision), num_gpus=int(c.num_gpus),
            compute_efficiency=None if ce is None else float(ce),
            memory_efficiency=None if me is None else float(me),
            step_overhead_s=float(c.step_overhead_s), prefill_overhead_s=float(c.prefill_overhead_s),
            gemm_half_tokens=float(c.gemm_half_tokens),
        )


# --- one step from sums, written once for Python and numba ------------------
# CostModel.step_time_s and the cluster's numba queue (cluster/queue.py, which
# jits these plain functions) time a step with the same arithmetic, in the
# same order as the vectorised methods above, so both give the same bits.

#: Value of STEP_CONSTANTS[0] ("kind") for this roofline model.
ROOFLINE = 0.0
#: Names of CostModel.step_constants(), in order.
STEP_CONSTANTS = ("kind", "step_overhead_s", "prefill_overhead_s", "body_flops_per_token", "head_flops",
                  "attention_flops_per_pair", "kv_bytes_per_token", "weight_bytes_per_param",
                  "dense_params_read", "is_moe", "moe_shared_params", "moe_expert_params", "moe_num_experts",
                  "moe_miss_probability", "head_params", "achievable_flops_s", "gemm_half_tokens",
                  "achievable_bytes_s", "num_gpus", "allreduce_latency_s", "hidden_size", "activation_bytes",
                  "interconnect_bytes_s", "two_layers")


def add_prefill_chunk(c, flops, kv_bytes, new, ctx):
    """(flops, kv_bytes) after adding a prefill chunk of `new` tokens after
    `ctx` cached ones (linear_flops + attention_flops, KV read and written)."""
    cc = float(ctx)
    p = cc + float(new)
    linear = c[3] * new + c[4] * (1.0 if new > 0 else 0.0)
    attention = c[5] * ((p * (p + 1.0) - cc * (cc + 1.0)) / 2.0)
    return flops + (linear + attention), kv_bytes + (new + ctx) * c[6]


def step_time(c, prefill_flops, prefill_kv_bytes, prefill_tokens, prefill_chunks, decode_context_tokens,
              decode_requests):
    """CostModel.step_time_s from its sums: the prefill chunks' (add_prefill_chunk)
    and the decoding requests' count and total context."""
    if prefill_chunks == 0 and decode_requests == 0:
        return c[1]
    b = decode_requests
    k = decode_context_tokens
    flops = prefill_flops + ((c[3] * 1.0 + c[4] * 1.0) * b + c[5] * k)
    kv_bytes = prefill_kv_bytes + k * c[6]
    tokens = prefill_tokens + b
    if c[9] != 0.0:  # MoE: the routed experts `tokens` tokens touch
        expected = c[12] * (1.0 - c[13] ** max(float(tokens), 0.0))
        weights = ((c[10] + c[11] * expected) + c[14]) * c[7]
    else:
        weights = c[8] * c[7]
    t = max(float(tokens), 1.0)
    roofline = max(flops / (c[15] * t / (t + c[16])), (weights + kv_bytes) / c[17])
    comm = 0.0
    if c[18] > 1.0:
        n = c[18]
        comm = c[23] * (c[19] + 2.0 * (n - 1.0) / n * float(tokens) * c[20] * c[21] / c[22])
    return c[1] + (c[2] if prefill_chunks > 0 else 0.0) + roofline + comm
