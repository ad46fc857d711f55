"""Config cost: `compose_config([])` and `import prefix_study.replay`, each in
fresh interpreters.

    .venv/bin/python bench/config_speed.py [--runs 5]

`compose_config([])` (imports included; target < 1.5 s) against a baseline
measured in the same run: the same, after importing every registry entry
first, as the previous release did to list policy, router, cache and trace
format names (numba, every kernel, every router). Prints the median wall and
CPU seconds of each and their ratio, and which heavy packages
`import prefix_study.replay` loads. Nothing is asserted on time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

PROBE = """
import json, sys, time
w0, c0 = time.perf_counter(), time.process_time()
{before}
from prefix_study.config.compose import compose_config
compose_config([])
print(json.dumps([time.perf_counter() - w0, time.process_time() - c0, "numba" in sys.modules]))
"""

LOAD_EVERY_ENTRY = """
from prefix_study import registry
for r in (registry.POLICY_REGISTRY, registry.ROUTER_REGISTRY, registry.CACHE_REGISTRY,
          registry.TRACE_FORMAT_REGISTRY):
    r.load_all()
"""


def fresh(code: str) -> list:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    fresh(PROBE.format(before=LOAD_EVERY_ENTRY))  # warm numba's and Python's caches once
    rows = {}
    for label, before in (("compose_config([])", ""), ("baseline: every entry imported", LOAD_EVERY_ENTRY)):
        runs = [fresh(PROBE.format(before=before)) for _ in range(args.runs)]
        wall, cpu = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
        rows[label] = (wall, cpu)
        print(f"{label:32} wall {wall:5.2f} s  CPU {cpu:5.2f} s  numba imported: {runs[0][2]}")
    (w, c), (bw, bc) = rows.values()
    print(f"baseline / ours: wall {bw / w:.2f}x, CPU {bc / c:.2f}x; compose_config([]) under 1.5 s: "
          f"{'yes' if w < 1.5 else 'no'} (wall), {'yes' if c < 1.5 else 'no'} (CPU; wall on a busy machine "
          "waits for other processes)")
    loaded = fresh("import json, sys\nimport prefix_study.replay\nprint(json.dumps(sorted(sys.modules)))")
    heavy = sorted({m.split(".")[0] for m in loaded} & {"hydra", "omegaconf", "numba", "polars", "pyarrow", "torch",
                                                         "vllm", "matplotlib"})
    kernels = [m for m in loaded if m.startswith("prefix_study.replay.kernels.") and not m.rsplit(".", 1)[1][0] == "_"]
    print(f"import prefix_study.replay loads {heavy}; kernel modules: {kernels or 'none'}")


if __name__ == "__main__":
    main()
