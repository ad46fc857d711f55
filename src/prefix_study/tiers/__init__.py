"""KV cache tiers below GPU memory (issue 18): a tier hierarchy resolved from
the `tiers` config (spec.py), and a replay of vLLM's prefix rule across the
tiers (replay.py, whose numba loop is kernel.py), and the bandwidth at which
loading a prefix ties with recomputing it (break_even.py)."""

from prefix_study.tiers.break_even import break_even_bytes_s, recompute_s
from prefix_study.tiers.replay import TierReplay, tier_replay
from prefix_study.tiers.spec import Hierarchy, TierSpec, hierarchy

__all__ = ["Hierarchy", "TierReplay", "TierSpec", "break_even_bytes_s", "hierarchy", "recompute_s", "tier_replay"]
