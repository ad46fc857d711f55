"""Check the cost model's TTFT against published first-token latencies.

Each point is a measured time to first token of one request alone (batch 1 /
concurrency 1) at a known prompt length, model, GPU, precision and tensor
parallelism. The prediction is `CostModel.ttft_s(prompt, 0)` with the
factors of the default config (`cost.*` in src/prefix_study/config/schema.py)
and the model/hardware profiles in conf/. Prints every point, the
prediction, the signed error, and the median absolute error (target <= 25%).

    python bench/cost_model_check.py [OVERRIDE ...]   # e.g. cost.compute_efficiency=0.6
"""

from __future__ import annotations

import statistics
import sys
from dataclasses import dataclass

from prefix_study.config.compose import compose_config
from prefix_study.cost import CostModel

#: TensorRT-LLM "Performance of TensorRT-LLM", Low Latency tables (data from
#: TensorRT-LLM v0.5; batch size 1, "1st Token Latency (ms)"; LLaMA = Llama-2,
#: per the same file's methodology section).
TRTLLM = ("https://github.com/NVIDIA/TensorRT-LLM/blob/138f96d45f90b9667426f7c47297d8c06bafac73/"
          "docs/source/performance.md")
#: NVIDIA NIM LLM benchmarking guide, Performance: Llama-3.3-70b-instruct, NIM
#: 1.8.0, "2 x H100 80G", "fp8 TP2", concurrency 1 (TTFT (ms)). Llama-3.3-70B
#: has Llama-3.1-70B's architecture (conf/model/llama3_70b.yaml).
NIM = "https://docs.nvidia.com/nim/benchmarking/llm/1.0.0/performance.md"


@dataclass(frozen=True)
class Measurement:
    label: str
    model: str          # conf/model/<name>
    hardware: str       # conf/hardware/<name>
    precision: str      # bf16 (also fp16) or fp8
    num_gpus: int       # tensor parallel
    prompt_tokens: int
    ttft_ms: float
    source: str


MEASUREMENTS = [
    Measurement("TRT-LLM Llama-2-7B H100 FP8", "llama2_7b", "h100_sxm", "fp8", 1, 2048, 36, TRTLLM),
    Measurement("TRT-LLM Llama-2-7B H100 FP8", "llama2_7b", "h100_sxm", "fp8", 1, 128, 7, TRTLLM),
    Measurement("TRT-LLM Llama-2-70B 4xH100 FP8", "llama2_70b", "h100_sxm", "fp8", 4, 2048, 109, TRTLLM),
    Measurement("TRT-LLM Llama-2-70B 4xH100 FP8", "llama2_70b", "h100_sxm", "fp8", 4, 128, 26, TRTLLM),
    Measurement("TRT-LLM Llama-2-7B L40S FP8", "llama2_7b", "l40s", "fp8", 1, 2048, 73, TRTLLM),
    Measurement("TRT-LLM Llama-2-7B L40S FP8", "llama2_7b", "l40s", "fp8", 1, 128, 14, TRTLLM),
    Measurement("TRT-LLM Llama-2-7B A100 FP16", "llama2_7b", "a100_80gb", "bf16", 1, 2048, 133, TRTLLM),
    Measurement("TRT-LLM Llama-2-7B A100 FP16", "llama2_7b", "a100_80gb", "bf16", 1, 128, 16, TRTLLM),
    Measurement("TRT-LLM Llama-2-70B 4xA100 FP16", "llama2_70b", "a100_80gb", "bf16", 4, 2048, 377, TRTLLM),
    Measurement("TRT-LLM Llama-2-70B 4xA100 FP16", "llama2_70b", "a100_80gb", "bf16", 4, 128, 47, TRTLLM),
    Measurement("NIM 1.8.0 Llama-3.3-70B 2xH100 FP8", "llama3_70b", "h100_sxm", "fp8", 2, 5000, 406.77, NIM),
    Measurement("NIM 1.8.0 Llama-3.3-70B 2xH100 FP8", "llama3_70b", "h100_sxm", "fp8", 2, 500, 47.77, NIM),
]


def predict_ms(m: Measurement, overrides: list[str]) -> float:
    cfg = compose_config([f"model={m.model}", f"hardware={m.hardware}", f"cost.precision={m.precision}",
                          f"cost.num_gpus={m.num_gpus}", *overrides])
    return CostModel.from_config(cfg).ttft_s(m.prompt_tokens, 0) * 1e3


def main(argv: list[str]) -> float:
    errors = []
    print(f"{'measurement':38s} {'prompt':>6s} {'measured ms':>11s} {'predicted ms':>12s} {'error':>7s}")
    for m in MEASUREMENTS:
        pred = predict_ms(m, argv)
        err = pred / m.ttft_ms - 1
        errors.append(err)
        print(f"{m.label:38s} {m.prompt_tokens:6d} {m.ttft_ms:11.1f} {pred:12.1f} {err:+7.1%}")
    med = statistics.median(abs(e) for e in errors)
    print(f"\nmedian absolute error {med:.1%} over {len(errors)} points (target <= 25%)")
    print("sources:", TRTLLM, NIM, sep="\n  ")
    return med


if __name__ == "__main__":
    main(sys.argv[1:])
