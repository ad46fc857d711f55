"""Model and hardware profiles: the architecture and datasheet facts that turn
blocks into bytes and token counts into seconds.

The engine keeps running a tiny random-weight model on the CPU; a *named*
profile (`conf/model/<name>.yaml`, `conf/hardware/<name>.yaml`) only converts
units and time. Every number in those files carries its source.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

GIB = 2**30


@dataclass(frozen=True)
class ModelProfile:
    """Architecture of a published model (from its config.json).

    KV bytes per token:
    - MHA/GQA: 2 (K and V) x num_layers x num_kv_heads x head_dim x kv_dtype_bytes
    - MLA (DeepSeek-V2/V3, `mla_kv_lora_rank` set): the cache holds one latent
      vector plus the decoupled RoPE key per layer and token:
      num_layers x (kv_lora_rank + qk_rope_head_dim) x kv_dtype_bytes
    """

    name: str
    num_layers: int
    hidden_size: int
    num_attention_heads: int
    num_kv_heads: int
    #: Per-head dimension of the attention scores (q.k); for MLA the
    #: qk_nope_head_dim + qk_rope_head_dim.
    head_dim: int
    #: Parameters one token passes through (active parameters for MoE).
    num_params: int
    kv_dtype_bytes: int = 2
    mla_kv_lora_rank: Optional[int] = None
    mla_qk_rope_head_dim: Optional[int] = None
    #: Dense FFN width and vocabulary, to cross-check num_params (dense models).
    intermediate_size: Optional[int] = None
    vocab_size: Optional[int] = None
    tie_word_embeddings: bool = False
    source: str = ""
    #: Per-head width of V (the PV product); None: head_dim. MLA: v_head_dim
    #: (DeepSeek-V3: 128, while q.k uses 192).
    v_head_dim: Optional[int] = None
    #: Mixture of experts: routed experts, experts each token picks (top-k),
    #: and the parameters of one routed expert summed over the MoE layers.
    #: num_params stays the *activated* count (k experts per token).
    moe_num_experts: Optional[int] = None
    moe_top_k: Optional[int] = None
    moe_expert_params: Optional[int] = None

    @property
    def is_mla(self) -> bool:
        return self.mla_kv_lora_rank is not None

    @property
    def is_moe(self) -> bool:
        return self.moe_num_experts is not None

    @property
    def pv_head_dim(self) -> int:
        return int(self.v_head_dim) if self.v_head_dim is not None else self.head_dim

    def embedding_params(self) -> int:
        """Input embedding table: a lookup, no FLOPs (0 without vocab_size)."""
        return int(self.vocab_size) * self.hidden_size if self.vocab_size is not None else 0

    def lm_head_params(self) -> int:
        """LM head matmul (the tied table when embeddings are tied; 0 without vocab_size)."""
        return self.embedding_params()

    def body_params(self) -> int:
        """Activated parameters of the decoder layers: everything one token
        multiplies except the embedding lookup and the LM head."""
        untied_head = 0 if self.tie_word_embeddings else self.lm_head_params()
        return int(self.num_params) - self.embedding_params() - untied_head

    def expected_experts(self, tokens: Any) -> Any:
        """Expected distinct routed experts (per MoE layer) that `tokens`
        tokens touch with top-k routing, each token's k experts uniform:
        E (1 - (1 - k/E)^T). Dense models: 0."""
        if not self.is_moe:
            return np.zeros_like(np.asarray(tokens, dtype=np.float64))
        e, k = float(self.moe_num_experts), float(self.moe_top_k)
        t = np.maximum(np.asarray(tokens, dtype=np.float64), 0.0)
        return e * (1.0 - (1.0 - k / e) ** t)

    def weight_params_read(self, tokens: Any) -> Any:
        """Parameters read from memory by one forward pass over `tokens`
        tokens: the layers' shared weights, the routed experts the tokens
        touch (MoE) and the LM head; the embedding table is only looked up."""
        head = self.lm_head_params()
        if not self.is_moe:
            return np.full_like(np.asarray(tokens, dtype=np.float64), float(self.body_params() + head))
        per_expert = float(self.moe_expert_params)
        shared = self.body_params() - int(self.moe_top_k) * per_expert
        return shared + per_expert * self.expected_experts(tokens) + head

    def kv_bytes_per_token(self) -> int:
        if self.is_mla:
            return self.num_layers * (int(self.mla_kv_lora_rank) + int(self.mla_qk_rope_head_dim or 0)) \
                * self.kv_dtype_bytes
        return 2 * self.num_layers * self.num_kv_heads * self.head_dim * self.kv_dtype_bytes

    def kv_bytes_per_block(self, block_size: int) -> int:
        return self.kv_bytes_per_token() * int(block_size)

    def dense_param_count(self) -> int:
        """Parameters of a dense Llama-style decoder from its shape (no biases,
        no norms): embeddings (+ untied LM head) + per layer q/k/v/o and a
        gated MLP. Used to check `num_params`; MoE/MLA models are not covered."""
        if self.intermediate_size is None or self.vocab_size is None or self.is_mla or self.is_moe:
            raise ValueError(f"{self.name}: dense_param_count needs a dense model with "
                             "intermediate_size and vocab_size")
        q = self.hidden_size * self.num_attention_heads * self.head_dim
        kv = 2 * self.hidden_size * self.num_kv_heads * self.head_dim
        o = self.num_attention_heads * self.head_dim * self.hidden_size
        mlp = 3 * self.hidden_size * self.intermediate_size
        embed = self.vocab_size * self.hidden_size * (1 if self.tie_word_embeddings else 2)
        return embed + self.num_layers * (q + kv + o + mlp)

    @classmethod
    def from_config(cls, node: Any) -> "ModelProfile":
        """From the composed `model` config node (or any mapping with these keys)."""
        get = (lambda k, d=None: node.get(k, d)) if hasattr(node, "get") else \
            (lambda k, d=None: getattr(node, k, d))
        return cls(
            name=str(get("name")), num_layers=int(get("num_layers")),
            hidden_size=int(get("hidden_size")), num_attention_heads=int(get("num_attention_heads")),
            num_kv_heads=int(get("num_kv_heads")), head_dim=int(get("head_dim")),
            num_params=int(get("num_params")), kv_dtype_bytes=int(get("kv_dtype_bytes", 2)),
            mla_kv_lora_rank=None if get("mla_kv_lora_rank") is None else int(get("mla_kv_lora_rank")),
            mla_qk_rope_head_dim=None if get("mla_qk_rope_head_dim") is None
            else int(get("mla_qk_rope_head_dim")),
            intermediate_size=None if get("intermediate_size") is None else int(get("intermediate_size")),
            vocab_size=None if get("vocab_size") is None else int(get("vocab_size")),
            tie_word_embeddings=bool(get("tie_word_embeddings", False)),
            source=str(get("source", "")),
            v_head_dim=_opt_int(get("v_head_dim")),
            moe_num_experts=_opt_int(get("moe_num_experts")),
            moe_top_k=_opt_int(get("moe_top_k")),
            moe_expert_params=_opt_int(get("moe_expert_params")),
        )


def _opt_int(value: Any) -> Optional[int]:
    return None if value is None else int(value)


def _opt_float(value: Any) -> Optional[float]:
    return None if value is None else float(value)


@dataclass(frozen=True)
class HardwareProfile:
    """One GPU, from its datasheet (dense, i.e. without structured sparsity),
    plus the fractions of peak an inference engine reaches on it (each cited
    or fitted on the fit set of bench/cost_model_check.py, see the YAML)."""

    name: str
    peak_bf16_flops: float
    mem_bandwidth_bytes_s: float
    memory_bytes: float
    #: Host <-> GPU link, one direction (PCIe or NVLink-C2C).
    host_link_bytes_s: float
    #: Dense FP8 tensor throughput; None where the GPU has no FP8 (A100).
    peak_fp8_flops: Optional[float] = None
    source: str = ""
    #: GPU <-> GPU link of tensor parallelism, one direction per GPU
    #: (NVLink; PCIe where the GPU has no NVLink, e.g. L40S).
    interconnect: str = "nvlink"
    interconnect_bytes_s: float = 0.0
    #: Fixed cost of one all-reduce across the tensor-parallel GPUs (kernel
    #: launch and the GPUs' synchronisation), on top of its bytes.
    allreduce_latency_s: float = 0.0
    #: Fractions of peak FLOP/s (per precision) and of memory bandwidth reached
    #: (configs always set them: conf/hardware/*.yaml; these defaults serve
    #: direct construction in tests).
    compute_efficiency_bf16: float = 0.5
    compute_efficiency_fp8: Optional[float] = None
    memory_efficiency: float = 0.8

    def compute_efficiency(self, precision: str) -> float:
        return self._by_precision(precision, self.compute_efficiency_bf16, self.compute_efficiency_fp8,
                                  "FP8 efficiency")

    def peak_flops(self, precision: str) -> float:
        return self._by_precision(precision, self.peak_bf16_flops, self.peak_fp8_flops, "FP8 tensor cores")

    def _by_precision(self, precision: str, bf16: float, fp8: Optional[float], missing: str) -> float:
        if precision == "bf16":
            return bf16
        if precision == "fp8":
            if fp8 is None:
                raise ValueError(f"hardware {self.name} has no {missing} (cost.precision=fp8)")
            return fp8
        raise ValueError(f"precision {precision!r}: allowed bf16, fp8")

    @classmethod
    def from_config(cls, node: Any) -> "HardwareProfile":
        get = (lambda k, d=None: node.get(k, d)) if hasattr(node, "get") else \
            (lambda k, d=None: getattr(node, k, d))
        fp8 = get("peak_fp8_flops")
        return cls(
            name=str(get("name")), peak_bf16_flops=float(get("peak_bf16_flops")),
            mem_bandwidth_bytes_s=float(get("mem_bandwidth_bytes_s")),
            memory_bytes=float(get("memory_bytes")), host_link_bytes_s=float(get("host_link_bytes_s")),
            peak_fp8_flops=None if fp8 is None else float(fp8), source=str(get("source", "")),
            interconnect=str(get("interconnect", "nvlink")),
            interconnect_bytes_s=float(get("interconnect_bytes_s", 0.0)),
            allreduce_latency_s=float(get("allreduce_latency_s", 0.0)),
            compute_efficiency_bf16=float(get("compute_efficiency_bf16", 0.5)),
            compute_efficiency_fp8=_opt_float(get("compute_efficiency_fp8")),
            memory_efficiency=float(get("memory_efficiency", 0.8)),
        )
