"""KV cache tiers below GPU memory (issue 18): a tier hierarchy resolved from
the `tiers` config (spec.py), and a replay of vLLM's prefix rule across the
tiers (replay.py, whose numba loop is kernel.py), and the bandwidth at which
loading a prefix ties with recomputing it (break_even.py).

This `__init__` imports nothing: config validation imports `tiers.spec`, and
composing a config must not load numba (tests/test_architecture.py)."""
