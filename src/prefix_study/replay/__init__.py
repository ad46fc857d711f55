"""Cache replays of block traces under `block` and `prefix` semantics.

Kernels (numba) live one per policy in `replay/kernels/`; `policies.py` is the
registry; `replay()` runs one policy over one encoded trace.
"""

from prefix_study.replay.policies import Policy, get_policy, policy_names, register_policy
from prefix_study.replay.simulate import (
    SEMANTICS,
    ReplayResult,
    infinite_cache_hits,
    infinite_hit_mask,
    replay,
    replay_hit_mask,
)
from prefix_study.replay.sweep import hit_rate_table, write_hit_rates
from prefix_study.replay.trace import BlockTrace, encode_trace, load_block_trace, read_trace

__all__ = [
    "SEMANTICS",
    "BlockTrace",
    "Policy",
    "ReplayResult",
    "encode_trace",
    "get_policy",
    "hit_rate_table",
    "infinite_cache_hits",
    "infinite_hit_mask",
    "load_block_trace",
    "policy_names",
    "read_trace",
    "register_policy",
    "replay",
    "replay_hit_mask",
    "write_hit_rates",
]
