"""Hit rate vs capacity: one panel per workload x block size, one line per
policy (solid: block semantics, dashed: prefix semantics)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from matplotlib.lines import Line2D

from prefix_study.figures.style import SEMANTICS_STYLE, new_figure, policy_color, save_figure


def plot_hit_rate_vs_capacity(hit_rates: pl.DataFrame, out_stem: Path | str,
                              reuse_summary: pl.DataFrame | None = None) -> list[Path]:
    """hit_rates: `replay/hit_rates.parquet`; reuse_summary (optional):
    `stats/reuse_summary.parquet`, drawn as the infinite-cache bound."""
    workloads = sorted(hit_rates["workload"].unique().to_list())
    sizes = sorted(hit_rates["block_size"].unique().to_list())
    policies = list(dict.fromkeys(hit_rates.sort("policy")["policy"].to_list()))
    # Capacity in tokens (equal memory across block sizes) where the table has it.
    xcol = "capacity_tokens" if "capacity_tokens" in hit_rates.columns else "capacity_blocks"
    caps = sorted(hit_rates[xcol].unique().to_list())
    semantics = [s for s in SEMANTICS_STYLE if s in set(hit_rates["semantics"].to_list())]
    fig, axes = new_figure(len(workloads), len(sizes), panel_w=3.6, panel_h=2.7)
    for r, w in enumerate(workloads):
        for c, bs in enumerate(sizes):
            ax = axes[r][c]
            d = hit_rates.filter((pl.col("workload") == w) & (pl.col("block_size") == bs))
            for p in policies:
                for s in semantics:
                    e = d.filter((pl.col("policy") == p) & (pl.col("semantics") == s)).sort(xcol)
                    if e.height:
                        ax.plot(e[xcol].to_numpy(), e["hit_rate"].to_numpy(),
                                color=policy_color(p), linestyle=SEMANTICS_STYLE[s], marker="o",
                                markersize=3)
            if reuse_summary is not None:
                b = reuse_summary.filter((pl.col("workload") == w) & (pl.col("block_size") == bs))
                if b.height and b["infinite_hit_rate"][0] is not None:
                    ax.axhline(b["infinite_hit_rate"][0], color="black", linestyle=":", linewidth=1)
            ax.set_xscale("log", base=2)
            ax.set_xticks(caps, [str(c) for c in caps], rotation=45 if len(caps) > 5 else 0)
            ax.minorticks_off()
            ax.set_xlim(min(caps) / 1.3, max(caps) * 1.3)  # same axis in every panel
            ax.set_ylim(0, 1)
            ax.set_xlabel("cache capacity (tokens)" if xcol == "capacity_tokens" else "cache capacity (blocks)")
            ax.set_ylabel("hit rate (block accesses)")
            ax.set_title(f"{w} · {bs}-token blocks")
    handles = [Line2D([], [], color=policy_color(p), marker="o", markersize=3, label=p) for p in policies]
    handles += [Line2D([], [], color="black", linestyle=SEMANTICS_STYLE[s], label=f"{s} semantics") for s in semantics]
    if reuse_summary is not None:
        handles.append(Line2D([], [], color="black", linestyle=":", label="infinite cache"))
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 8), frameon=False,
               bbox_to_anchor=(0.5, -0.01))
    fig.suptitle("Hit rate vs cache capacity")
    fig.tight_layout(rect=(0, 0.04, 1, 0.97))
    return save_figure(fig, out_stem)
