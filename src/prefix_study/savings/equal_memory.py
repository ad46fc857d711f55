"""Block sizes compared at equal memory.

A capacity of N blocks holds N x block_size tokens, so comparing block sizes
at equal block counts compares caches of different sizes. Here every replay
is placed at its capacity in tokens (= KV bytes of any one model), and block
sizes are compared where the sweep has the same token capacity for all of
them (the default grid: 4096 and 8192 tokens for 16/32/64-token blocks).
"""

from __future__ import annotations

import polars as pl

from prefix_study.io import markdown_table


def matched_token_capacities(hit_rates: pl.DataFrame) -> list[int]:
    """Token capacities that every block size of the table reaches."""
    per_size = hit_rates.group_by("block_size").agg(pl.col("capacity_tokens").unique())
    common = None
    for caps in per_size["capacity_tokens"].to_list():
        common = set(caps) if common is None else common & set(caps)
    return sorted(common or [])


def equal_memory_table(hit_rates: pl.DataFrame) -> pl.DataFrame:
    """Hit rates at matched token capacities, one column per block size, plus
    the spread (largest minus smallest hit rate across block sizes)."""
    caps = matched_token_capacities(hit_rates)
    sizes = sorted(hit_rates["block_size"].unique().to_list())
    sel = hit_rates.filter(pl.col("capacity_tokens").is_in(caps))
    if sel.height == 0 or len(sizes) < 2:
        return pl.DataFrame(schema={"workload": pl.String, "semantics": pl.String, "policy": pl.String,
                                    "capacity_tokens": pl.Int64, "capacity_gib": pl.Float64})
    gib = sel.group_by("capacity_tokens").agg(pl.col("capacity_gib").first())
    wide = sel.pivot(on="block_size", index=["workload", "semantics", "policy", "capacity_tokens"],
                     values="hit_rate", sort_columns=True).rename({str(b): f"b{b}" for b in sizes})
    cols = [f"b{b}" for b in sizes]
    return (wide.join(gib, on="capacity_tokens")
            .with_columns((pl.max_horizontal(cols) - pl.min_horizontal(cols)).alias("spread"))
            .select("workload", "semantics", "policy", "capacity_tokens", "capacity_gib", *cols, "spread")
            .sort("workload", "semantics", "policy", "capacity_tokens"))


def equal_memory_finding(table: pl.DataFrame, policy: str = "lru", semantics: str = "prefix") -> str:
    """One sentence per workload: the block sizes' hit rates at equal memory."""
    sel = table.filter((pl.col("policy") == policy) & (pl.col("semantics") == semantics))
    if sel.height == 0:
        return "(no matched token capacities across block sizes)"
    cols = [c for c in sel.columns if c.startswith("b") and c[1:].isdigit()]
    lines = []
    for w in sorted(set(sel["workload"].to_list())):
        parts = []
        for r in sel.filter(pl.col("workload") == w).sort("capacity_tokens").iter_rows(named=True):
            rates = ", ".join(f"{c[1:]}-token {r[c]:.3f}" for c in cols if r[c] is not None)
            parts.append(f"{r['capacity_tokens']} tokens ({r['capacity_gib']:.2f} GiB): {rates}")
        spread = sel.filter(pl.col("workload") == w)["spread"].max()
        lines.append(f"- {w}: " + "; ".join(parts) + f" (largest spread {spread:.3f})")
    return "\n".join(lines)


def equal_memory_markdown(table: pl.DataFrame, model_name: str) -> str:
    return ("# Block sizes at equal memory\n\n"
            "Replay hit rates (hits / looked-up block accesses) at the token capacities every block "
            f"size reaches; `capacity_gib` is the KV memory of {model_name}. `spread` is the largest "
            "minus the smallest hit rate across block sizes.\n\n"
            f"Finding (LRU, prefix semantics):\n\n{equal_memory_finding(table)}\n\n"
            + markdown_table(table))
