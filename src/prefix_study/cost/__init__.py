"""Memory and time of a named model on a named GPU: KV bytes, capacities in
tokens/GiB, and a roofline cost model of prefill and decode."""

from prefix_study.cost.capacity import (
    CAPACITY_UNITS,
    capacity_blocks,
    capacity_gib,
    capacity_tokens,
    with_capacity_columns,
)
from prefix_study.cost.model import CostModel
from prefix_study.cost.profiles import GIB, HardwareProfile, ModelProfile

__all__ = [
    "CAPACITY_UNITS", "CostModel", "GIB", "HardwareProfile", "ModelProfile", "capacity_blocks",
    "capacity_gib", "capacity_tokens", "with_capacity_columns",
]
