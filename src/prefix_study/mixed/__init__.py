"""The mixed workload: interleaved traces, baseline vs workload-aware LRU."""

from prefix_study.mixed.interleave import interleave_traces
from prefix_study.mixed.workload_aware import (
    choose_cache_friendly,
    mixed_hit_rate_table,
    write_mixed_hit_rates,
)

__all__ = ["choose_cache_friendly", "interleave_traces", "mixed_hit_rate_table", "write_mixed_hit_rates"]
