"""Check the cost model against published latencies, out of sample.

Every point below is a published measurement: time to first token (TTFT),
time per output token (TPOT, at batch 1 or a stated batch) or the end-to-end
latency of a fixed batch (e2e), with model, GPU, count, precision, tensor
parallelism, input and output lengths, batch or concurrency, and the URL of
the table it comes from. Nothing is estimated from a figure.

The points were split ONCE into a fit set and a check set (the `split` field
of each point; roughly every other point of each source, every GPU and both
TTFT and TPOT on both sides). The efficiencies and overheads of the model
(conf/hardware/*.yaml: compute and memory efficiency per GPU and precision,
all-reduce latency; cost.step_overhead_s) are fitted on the fit set only;
this script refits them (Nelder-Mead on the squared log error) and prints:

- the fitted values next to the config's (which must equal them, rounded),
- the fit-set error and the CHECK-set error of the config's model,
- the leave-one-source-out error: refit without a source, predict it,
- a TP sweep: Llama-3.1-70B on H100 (bf16), TP 1/2/4/8, 128 and 2,048 tokens.

    python bench/cost_model_check.py            # everything (about a minute)
    python bench/cost_model_check.py --no-refit # the config's model only

Predictions: TTFT = CostModel.ttft_s(P, 0) (one prefill step); TPOT =
CostModel.tpot_s(P + O/2, B) (the mean decode step: context halfway through
the output); e2e = one step prefilling B prompts + the O - 1 decode steps of
the batch (CostModel.decode_time_s). Targets on the check set: median
absolute TTFT and TPOT error <= 15%, no point worse than 50%.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from prefix_study.config.compose import compose_config
from prefix_study.cost import CostModel, HardwareProfile, ModelProfile

# --- sources ------------------------------------------------------------------

#: TensorRT-LLM "Performance of TensorRT-LLM", section "Low Latency" (data
#: from TensorRT-LLM v0.5; batch size 1, "1st Token Latency (ms)"); tables
#: "H100 GPUs (FP8)", "L40S GPUs (FP8)", "A100 GPUs (FP16)". LLaMA = Llama-2
#: (the file's methodology section builds Llama2-7b and Llama2-70b).
TRTLLM = ("https://github.com/NVIDIA/TensorRT-LLM/blob/138f96d45f90b9667426f7c47297d8c06bafac73/"
          "docs/source/performance.md")
#: LMDeploy "Benchmark on A100 (FP16)", lmdeploy v0.1.0a1, A100-80G, section
#: "Static Inference Benchmark", tables llama2-7b / llama2-13b / llama2-70b:
#: FTL(ave) = TTFT; the "50%" column = median per-token latency (TPOT).
LMDEPLOY = ("https://github.com/InternLM/lmdeploy/blob/32cc6ce474a7c624f09a24dbf0eac308fb319c10/"
            "docs/en/benchmark/a100_fp16.md")
#: NVIDIA NIM LLM benchmarking, "Performance", Version 1.8.0 tables at
#: concurrency 1 (TTFT (ms), ITL (ms)): "Llama-3.1-8b-instruct Results, 1 x
#: H100 80G, fp8 TP1" and "Llama-3.3-70b-instruct Results, 2 x H100 80G, fp8
#: TP2", one table per "N Input Tokens / M Output Tokens". Llama-3.3-70B has
#: Llama-3.1-70B's architecture (conf/model/llama3_70b.yaml). The stored copy
#: of the page we searched shows some of these rows (8B 200/200; 70B 5000/500
#: and 500/2000, which match); the others, and the 8B table's GPU/TP heading,
#: were read from a transcription of the same page (github.com/zivbeker42/
#: llm-guesstimator, tested_benchmarks/nim_*_v1.8.0_*.csv), which agrees with
#: the page on every row both show.
NIM = "https://docs.nvidia.com/nim/benchmarking/llm/1.0.0/performance.md"
#: vLLM performance benchmark (Buildkite build 9515), "Latency tests": input 32
#: tokens, output 128, batch size fixed 8, H200, "Mean latency (ms)" per test
#: (latency_llama8B_tp1 = Llama-3.1-8B, latency_llama70B_tp4 = Llama-3-70B,
#: latency_mixtral8x7B_tp2); vLLM's default dtype ("auto": the checkpoints' bf16).
VLLM = "https://buildkite.com/vllm/performance-benchmark/builds/9515"

SOURCES = {"trtllm": TRTLLM, "lmdeploy": LMDEPLOY, "nim": NIM, "vllm": VLLM}


@dataclass(frozen=True)
class Point:
    source: str         # key of SOURCES
    kind: str           # ttft | tpot | e2e
    model: str          # conf/model/<name>
    hardware: str       # conf/hardware/<name>
    num_gpus: int       # GPU count = tensor parallelism
    precision: str      # bf16 (fp16 too) or fp8
    input_tokens: int
    output_tokens: int
    batch: int          # batch size or concurrency
    measured_ms: float
    table: str          # the table / row within the source
    split: str          # fit | check (fixed once)

    @property
    def label(self) -> str:
        return (f"{self.source} {self.model} {self.num_gpus}x{self.hardware} {self.precision} "
                f"{self.kind} in{self.input_tokens}/out{self.output_tokens} b{self.batch}")


def _trt(model, hw, prec, tp, isl, ms, split):
    table = {"h100_sxm": "H100 GPUs (FP8)", "l40s": "L40S GPUs (FP8)", "a100_80gb": "A100 GPUs (FP16)"}[hw]
    return Point("trtllm", "ttft", model, hw, tp, prec, isl, 1, 1, ms, f"Low Latency, {table}", split)


def _lmd(kind, model, tp, b, isl, osl, s, split):
    return Point("lmdeploy", kind, model, "a100_80gb", tp, "bf16", isl, osl, b, s * 1e3,
                 f"Static Inference Benchmark, {model.replace('_', '-')}: batch {b}, prompt {isl}, output {osl}, "
                 + ("FTL(ave)" if kind == "ttft" else "50%"), split)


def _nim(kind, model, tp, isl, osl, ms, split):
    name = {"llama3_8b": "Llama-3.1-8b-instruct, 1 x H100 80G, fp8 TP1",
            "llama3_70b": "Llama-3.3-70b-instruct, 2 x H100 80G, fp8 TP2"}[model]
    return Point("nim", kind, model, "h100_sxm", tp, "fp8", isl, osl, 1, ms,
                 f"Version 1.8.0, {name}, {isl} Input Tokens / {osl} Output Tokens, concurrency 1, "
                 + ("TTFT (ms)" if kind == "ttft" else "ITL (ms)"), split)


def _vllm(test, model, tp, ms, split):
    return Point("vllm", "e2e", model, "h200", tp, "bf16", 32, 128, 8, ms,
                 f"Latency tests, {test}, H200, Mean latency (ms)", split)


POINTS = [
    # TensorRT-LLM v0.5, batch 1, first-token latency.
    _trt("llama2_7b", "h100_sxm", "fp8", 1, 128, 7, "fit"),
    _trt("llama2_7b", "h100_sxm", "fp8", 1, 2048, 36, "check"),
    _trt("llama2_70b", "h100_sxm", "fp8", 4, 128, 26, "check"),
    _trt("llama2_70b", "h100_sxm", "fp8", 4, 2048, 109, "fit"),
    _trt("llama2_7b", "l40s", "fp8", 1, 128, 14, "check"),
    _trt("llama2_7b", "l40s", "fp8", 1, 2048, 73, "fit"),
    _trt("llama2_7b", "a100_80gb", "bf16", 1, 128, 16, "fit"),
    _trt("llama2_7b", "a100_80gb", "bf16", 1, 2048, 133, "check"),
    _trt("llama2_70b", "a100_80gb", "bf16", 4, 128, 47, "check"),
    _trt("llama2_70b", "a100_80gb", "bf16", 4, 2048, 377, "fit"),
    # LMDeploy v0.1.0a1 on A100: batch 1 TTFT (prompt 1, 128, 2048; output 128).
    _lmd("ttft", "llama2_7b", 1, 1, 1, 128, 0.011, "check"),
    _lmd("ttft", "llama2_7b", 1, 1, 128, 128, 0.022, "fit"),
    _lmd("ttft", "llama2_7b", 1, 1, 2048, 128, 0.139, "check"),
    _lmd("ttft", "llama2_13b", 1, 1, 1, 128, 0.018, "fit"),
    _lmd("ttft", "llama2_13b", 1, 1, 128, 128, 0.040, "check"),
    _lmd("ttft", "llama2_13b", 1, 1, 2048, 128, 0.242, "fit"),
    _lmd("ttft", "llama2_70b", 4, 1, 1, 128, 0.031, "fit"),
    _lmd("ttft", "llama2_70b", 4, 1, 128, 128, 0.074, "check"),
    _lmd("ttft", "llama2_70b", 4, 1, 2048, 128, 0.402, "check"),
    # ... TPOT at batch 1 and at batch 16.
    _lmd("tpot", "llama2_7b", 1, 1, 128, 2048, 0.010, "fit"),
    _lmd("tpot", "llama2_7b", 1, 1, 2048, 128, 0.010, "check"),
    _lmd("tpot", "llama2_13b", 1, 1, 128, 2048, 0.018, "check"),
    _lmd("tpot", "llama2_13b", 1, 1, 2048, 128, 0.019, "fit"),
    _lmd("tpot", "llama2_70b", 4, 1, 128, 2048, 0.031, "fit"),
    _lmd("tpot", "llama2_70b", 4, 1, 2048, 128, 0.031, "check"),
    _lmd("tpot", "llama2_7b", 1, 16, 128, 2048, 0.015, "check"),
    _lmd("tpot", "llama2_7b", 1, 16, 2048, 128, 0.020, "fit"),
    _lmd("tpot", "llama2_13b", 1, 16, 128, 2048, 0.026, "fit"),
    _lmd("tpot", "llama2_13b", 1, 16, 2048, 128, 0.033, "check"),
    _lmd("tpot", "llama2_70b", 4, 16, 128, 2048, 0.033, "check"),
    _lmd("tpot", "llama2_70b", 4, 16, 2048, 128, 0.035, "fit"),
    # NIM 1.8.0 at concurrency 1.
    _nim("ttft", "llama3_8b", 1, 200, 200, 10.26, "fit"),
    _nim("ttft", "llama3_8b", 1, 500, 2000, 13.84, "check"),
    _nim("ttft", "llama3_8b", 1, 1000, 1000, 19.03, "fit"),
    _nim("ttft", "llama3_8b", 1, 5000, 500, 77.45, "check"),
    _nim("ttft", "llama3_8b", 1, 20000, 2000, 403.2, "fit"),
    _nim("tpot", "llama3_8b", 1, 200, 200, 4.63, "check"),
    _nim("tpot", "llama3_8b", 1, 500, 2000, 4.56, "fit"),
    _nim("tpot", "llama3_8b", 1, 1000, 1000, 4.53, "check"),
    _nim("tpot", "llama3_8b", 1, 5000, 500, 4.62, "fit"),
    _nim("tpot", "llama3_8b", 1, 20000, 2000, 5.06, "check"),
    _nim("ttft", "llama3_70b", 2, 200, 200, 31.22, "check"),
    _nim("ttft", "llama3_70b", 2, 500, 2000, 47.77, "fit"),
    _nim("ttft", "llama3_70b", 2, 1000, 1000, 82.46, "check"),
    _nim("ttft", "llama3_70b", 2, 5000, 500, 406.77, "fit"),
    _nim("ttft", "llama3_70b", 2, 20000, 2000, 1833.01, "check"),
    _nim("tpot", "llama3_70b", 2, 200, 200, 18.8, "fit"),
    _nim("tpot", "llama3_70b", 2, 500, 2000, 18.91, "check"),
    _nim("tpot", "llama3_70b", 2, 1000, 1000, 18.67, "fit"),
    _nim("tpot", "llama3_70b", 2, 5000, 500, 18.58, "check"),
    _nim("tpot", "llama3_70b", 2, 20000, 2000, 19.58, "fit"),
    # vLLM latency tests: batch 8, 32 in / 128 out, end to end.
    _vllm("latency_llama8B_tp1", "llama3_8b", 1, 833.421, "fit"),
    _vllm("latency_llama70B_tp4", "llama3_70b", 4, 2077.53, "check"),
    _vllm("latency_mixtral8x7B_tp2", "mixtral_8x7b", 2, 1917.44, "check"),
]

#: Published measurements the model cannot represent, left out on purpose.
EXCLUDED = [
    ("NIM 1.8.0 rows at concurrency 5-250", NIM,
     "requests queue and share steps with other requests' prefills (continuous batching): "
     "not a single-request TTFT/TPOT"),
    ("NIM Llama-3.1-70b-instruct Version 1.3.0, concurrency 1 (TTFT 25.05 ms, ITL 13.21 ms)", NIM,
     "the stored copy of the page does not show that table's GPU, TP or input length"),
    ("vLLM Buildkite 'Serving tests' (TTFT, ITL at QPS 1-inf) incl. the speculative-decoding test", VLLM,
     "ShareGPT prompts of unknown, varying input length, Poisson arrivals; speculative decoding"),
    ("TensorRT-LLM v0.5 GPT-J 6B and Falcon 180B low-latency rows", TRTLLM,
     "no conf/model profile (GPT-J: parallel attention, non-gated GELU MLP; Falcon: likewise); "
     "left out rather than approximated"),
    ("LMDeploy internlm-20b rows", LMDEPLOY, "no conf/model profile for InternLM-20B"),
    ("LMDeploy 'Request Throughput Benchmark' FTL", LMDEPLOY,
     "3,000 ShareGPT requests at batch 128-256: queueing, unknown per-request input length"),
]

# --- model ------------------------------------------------------------------

#: What the fit sets: (hardware, precision) compute efficiencies, per-GPU
#: memory efficiencies, the NVLink all-reduce latency, the step overhead.
CE_KEYS = [("h100_sxm", "fp8"), ("a100_80gb", "bf16"), ("l40s", "fp8")]
#: L40S: its only points are compute-bound prefills, which say nothing about
#: its bandwidth; its memory efficiency is the mean of the fitted ones.
ME_KEYS = ["h100_sxm", "a100_80gb", "h200"]


@lru_cache(maxsize=None)
def _profiles(model: str, hardware: str) -> tuple[ModelProfile, HardwareProfile, object]:
    cfg = compose_config([f"model={model}", f"hardware={hardware}"])
    return ModelProfile.from_config(cfg.model), HardwareProfile.from_config(cfg.hardware), cfg.cost


@dataclass(frozen=True)
class Factors:
    """The fitted quantities; `None` entries fall back as the YAML states."""

    compute: dict
    memory: dict
    allreduce_latency_s: float
    step_overhead_s: float
    prefill_overhead_s: float
    gemm_half_tokens: float

    @classmethod
    def from_config(cls) -> "Factors":
        compute = {k: _profiles("llama3_8b", k[0])[1].compute_efficiency(k[1]) for k in CE_KEYS}
        memory = {k: _profiles("llama3_8b", k)[1].memory_efficiency for k in ME_KEYS + ["l40s"]}
        _, hw, cost = _profiles("llama3_8b", "h100_sxm")
        return cls(compute, memory, hw.allreduce_latency_s, float(cost.step_overhead_s),
                   float(cost.prefill_overhead_s), float(cost.gemm_half_tokens))

    def compute_for(self, hardware: str, precision: str) -> float:
        if (hardware, precision) in self.compute:
            return self.compute[(hardware, precision)]
        # The YAML's rule: a GPU's other precision, and H200 = H100 (same tensor cores).
        # A GPU absent from a leave-one-source-out fit: the mean fitted value.
        same = "h100_sxm" if hardware == "h200" else hardware
        values = [v for (h, _), v in sorted(self.compute.items()) if h == same]
        return values[0] if values else float(np.mean(list(self.compute.values())))

    def memory_for(self, hardware: str) -> float:
        if hardware in self.memory:
            return self.memory[hardware]
        return float(np.mean(list(self.memory.values())))


def cost_model(p: Point, f: Factors) -> CostModel:
    model, hw, _ = _profiles(p.model, p.hardware)
    hw = replace(hw, allreduce_latency_s=f.allreduce_latency_s)
    return CostModel(model, hw, precision=p.precision, num_gpus=p.num_gpus,
                     compute_efficiency=f.compute_for(p.hardware, p.precision),
                     memory_efficiency=f.memory_for(p.hardware), step_overhead_s=f.step_overhead_s,
                     prefill_overhead_s=f.prefill_overhead_s, gemm_half_tokens=f.gemm_half_tokens)


def predict_ms(p: Point, f: Factors) -> float:
    cm = cost_model(p, f)
    if p.kind == "ttft":
        return float(cm.ttft_s(p.input_tokens, 0)) * 1e3
    if p.kind == "tpot":
        return float(cm.tpot_s(p.input_tokens + p.output_tokens / 2.0, p.batch)) * 1e3
    prefill = cm.step_time_s([(p.input_tokens, 0)] * p.batch, [])
    return (prefill + cm.decode_time_s(p.input_tokens, p.output_tokens, p.batch)) * 1e3


# --- fitting ----------------------------------------------------------------

def _unpack(x: np.ndarray, ce: list, me: list) -> Factors:
    sig = 1.0 / (1.0 + np.exp(-x))
    compute = {k: float(sig[i]) for i, k in enumerate(ce)}
    memory = {k: float(sig[len(ce) + i]) for i, k in enumerate(me)}
    return Factors(compute, memory, *(float(v) for v in np.exp(x[-4:])))


def _nelder_mead(fun, x0: np.ndarray, iters: int = 1500, scale: float = 0.5) -> np.ndarray:
    """Plain Nelder-Mead (deterministic): enough for a dozen parameters."""
    n = len(x0)
    simplex = [x0] + [x0 + scale * np.eye(n)[i] for i in range(n)]
    values = [fun(x) for x in simplex]
    for _ in range(iters):
        order = np.argsort(values)
        simplex = [simplex[i] for i in order]
        values = [values[i] for i in order]
        if values[-1] - values[0] < 1e-10:
            break
        centroid = np.mean(simplex[:-1], axis=0)
        xr = centroid + (centroid - simplex[-1])
        fr = fun(xr)
        if fr < values[0]:
            xe = centroid + 2.0 * (centroid - simplex[-1])
            fe = fun(xe)
            simplex[-1], values[-1] = (xe, fe) if fe < fr else (xr, fr)
        elif fr < values[-2]:
            simplex[-1], values[-1] = xr, fr
        else:
            xc = centroid + 0.5 * (simplex[-1] - centroid)
            fc = fun(xc)
            if fc < values[-1]:
                simplex[-1], values[-1] = xc, fc
            else:
                simplex = [simplex[0]] + [simplex[0] + 0.5 * (s - simplex[0]) for s in simplex[1:]]
                values = [values[0]] + [fun(s) for s in simplex[1:]]
    return simplex[int(np.argmin(values))]


def fit(points: list[Point]) -> Factors:
    """Least squares on log(predicted / measured) over `points`; only the
    efficiencies of GPUs/precisions present in `points` are fitted."""
    ce = [k for k in CE_KEYS if any((p.hardware, p.precision) == k for p in points)]
    me = [k for k in ME_KEYS if any(p.hardware == k for p in points)]
    x0 = np.concatenate([np.full(len(ce), 0.0), np.full(len(me), 1.4),
                         np.log([2e-5, 2e-3, 3e-3, 64.0])])

    def loss(x):
        f = _unpack(x, ce, me)
        return sum(math.log(predict_ms(p, f) / p.measured_ms) ** 2 for p in points)

    x = x0
    for scale in (1.0, 0.2):  # a restart from the best point, smaller simplex
        x = _nelder_mead(loss, x, scale=scale)
    return _unpack(x, ce, me)


# --- reporting --------------------------------------------------------------

def errors(points: list[Point], f: Factors) -> list[float]:
    return [predict_ms(p, f) / p.measured_ms - 1 for p in points]


def summary(name: str, points: list[Point], f: Factors) -> dict:
    errs = errors(points, f)
    out = {}
    parts = []
    for kind in ("ttft", "tpot", "e2e"):
        e = [abs(x) for x, p in zip(errs, points) if p.kind == kind]
        if e:
            out[kind] = statistics.median(e)
            parts.append(f"{kind} median |err| {statistics.median(e):6.1%} (n={len(e)})")
    worst = max(abs(x) for x in errs)
    out["worst"] = worst
    print(f"{name:28s} " + ", ".join(parts) + f", worst {worst:.1%}")
    return out


def print_table(points: list[Point], f: Factors) -> None:
    print(f"{'point':72s} {'measured':>9s} {'predicted':>9s} {'error':>7s}")
    for p, e in zip(points, errors(points, f)):
        print(f"{p.label:72s} {p.measured_ms:9.2f} {predict_ms(p, f):9.2f} {e:+7.1%}")


def tp_sweep(f: Factors) -> None:
    """Llama-3.1-70B on H100 (bf16, the config's factors), TP 1/2/4/8."""
    print("\nTP sweep: Llama-3.1-70B, H100 SXM, bf16, TTFT of one request (ms); all-reduce share of TTFT")
    print(f"{'TP':>3s} {'128 tok':>9s} {'speed-up':>8s} {'AR share':>8s} {'2048 tok':>9s} {'speed-up':>8s} "
          f"{'AR share':>8s}")
    base = {}
    for tp in (1, 2, 4, 8):
        row = [f"{tp:3d}"]
        for n in (128, 2048):
            p = Point("sweep", "ttft", "llama3_70b", "h100_sxm", tp, "bf16", n, 1, 1, 1.0, "", "")
            cm = cost_model(p, f)
            t = float(cm.ttft_s(n, 0))
            base.setdefault(n, t)
            row += [f"{t * 1e3:9.1f}", f"{base[n] / t:7.2f}x", f"{float(cm.comm_time_s(n)) / t:8.1%}"]
        print(" ".join(row))


def main(argv: list[str]) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--no-refit", action="store_true", help="skip the refit and leave-one-source-out")
    args = ap.parse_args(argv)
    fit_set = [p for p in POINTS if p.split == "fit"]
    check_set = [p for p in POINTS if p.split == "check"]
    srcs = sorted({p.source for p in POINTS})
    print(f"{len(POINTS)} published points from {len(srcs)} sources: {len(fit_set)} fit, {len(check_set)} check")
    for key in srcs:
        print(f"  {key}: {SOURCES[key]}")
    config = Factors.from_config()
    if not args.no_refit:
        fitted = fit(fit_set)
        print("\nfitted on the fit set -> in conf/hardware/*.yaml and cost.step_overhead_s:")
        for k in CE_KEYS:
            print(f"  compute_efficiency {k[0]}/{k[1]}: fitted {fitted.compute[k]:.3f}  config {config.compute[k]:.3f}")
        for k in ME_KEYS:
            print(f"  memory_efficiency {k}: fitted {fitted.memory[k]:.3f}  config {config.memory[k]:.3f}")
        print(f"  allreduce_latency_s: fitted {fitted.allreduce_latency_s:.2e}  config "
              f"{config.allreduce_latency_s:.2e}")
        for key in ("step_overhead_s", "prefill_overhead_s", "gemm_half_tokens"):
            print(f"  {key}: fitted {getattr(fitted, key):.3g}  config {getattr(config, key):.3g}")
    print("\nerrors of the config's model (|predicted / measured - 1|):")
    result = {"fit": summary("fit set (in sample)", fit_set, config),
              "check": summary("CHECK set (out of sample)", check_set, config)}
    if not args.no_refit:
        print("\nleave one source out (refit on the other sources' fit points, predict all of this source's):")
        for key in srcs:
            refit = fit([p for p in fit_set if p.source != key])
            result[f"loso_{key}"] = summary(f"  without {key}", [p for p in POINTS if p.source == key], refit)
    print("\ncheck set, point by point:")
    print_table(check_set, config)
    print("\nfit set, point by point:")
    print_table(fit_set, config)
    print("\nexcluded on purpose:")
    for what, url, why in EXCLUDED:
        print(f"  {what}: {why}\n    {url}")
    tp_sweep(config)
    ok = result["check"].get("ttft", 1) <= 0.15 and result["check"].get("tpot", 1) <= 0.15 \
        and result["check"]["worst"] <= 0.5
    print(f"\ncheck-set targets (median TTFT and TPOT <= 15%, no point worse than 50%): "
          f"{'met' if ok else 'NOT met'}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
