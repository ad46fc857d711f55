"""Engine-measured prefix hit rate beside the `prefix` replay at the engine's
capacity, both in tokens (the replay stage's engine_vs_replay and
engine_sweep tables): plots only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from prefix_study.figures.style import new_figure, policy_color, save_figure


def plot_engine_vs_replay(table: pl.DataFrame, out_stem: Path | str) -> list[Path]:
    """Grouped bars per workload, one panel per block size (table:
    replay/engine_vs_replay.parquet, `replay.engine_capacity.engine_vs_replay`)."""
    sizes = sorted(table["block_size"].unique().to_list())
    workloads = sorted(table["workload"].unique().to_list())
    fig, axes = new_figure(1, max(len(sizes), 1), panel_w=max(3.2, 0.9 * len(workloads) + 1.2), panel_h=3.0)
    x = np.arange(len(workloads))
    for c, bs in enumerate(sizes):
        ax = axes[0][c]
        d = table.filter(pl.col("block_size") == bs)
        eng = dict(zip(d["workload"].to_list(), d["engine_hit_rate"].to_list()))
        rep = dict(zip(d["workload"].to_list(), d["replay_hit_rate"].to_list()))
        ax.bar(x - 0.2, [eng.get(w, 0.0) for w in workloads], 0.4, color="#444444", label="engine (vLLM)")
        ax.bar(x + 0.2, [rep.get(w, 0.0) for w in workloads], 0.4, color=policy_color("lru"),
               label="prefix replay (LRU, tail-first)")
        ax.set_xticks(x, workloads, rotation=20, ha="right")
        ax.set_ylim(0, 1)
        ax.set_ylabel("cached prompt tokens / prompt tokens")
        ax.set_title(f"{bs}-token blocks")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2, frameon=False, bbox_to_anchor=(0.5, -0.02))
    fig.suptitle("Engine-measured vs replayed prefix hit rate")
    fig.tight_layout(rect=(0, 0.07, 1, 0.95))
    return save_figure(fig, out_stem)


def plot_engine_capacity(table: pl.DataFrame, out_stem: Path | str) -> list[Path]:
    """Hit rate against engine capacity (replay/engine_sweep.parquet): vLLM
    (solid), vLLM's block pool replayed along the engine's schedule (dotted)
    and the sequential prefix LRU replay (dashed); one colour per workload run,
    the mixed run's overall rate in black; one panel per block size. Only
    runs over the same requests are joined by a line."""
    from matplotlib.lines import Line2D

    from prefix_study.figures.style import series_colors

    rows = table.filter((pl.col("run") == pl.col("workload")) | (pl.col("workload") == "all"))
    rows = rows.with_columns(pl.when(pl.col("workload") == "all").then(pl.col("run"))
                             .otherwise(pl.col("workload")).alias("series"))
    sizes = sorted(rows["block_size"].unique().to_list()) or [0]
    names = sorted(rows["series"].unique().to_list())
    colors = {**series_colors(names), **{n: "#000000" for n in names if n not in set(rows["workload"])}}
    styles = [("engine_hit_rate", "-", "o", "vLLM"),
              ("batched_replay_hit_rate", ":", "+", "batched replay (engine's schedule)"),
              ("sequential_replay_hit_rate", "--", "x", "sequential prefix LRU replay")]
    fig, axes = new_figure(1, len(sizes), panel_w=3.8, panel_h=3.0)
    for c, bs in enumerate(sizes):
        ax = axes[0][c]
        for name in names:
            d = rows.filter((pl.col("block_size") == bs) & (pl.col("series") == name)).sort("capacity_blocks")
            # Runs over different request sets (the capacity sweep may run each
            # workload's first engine.capacity_conversations) are not joined.
            for _, part in d.group_by("requests", maintain_order=True):
                for col, ls, marker, _ in styles:
                    ax.plot(part["capacity_blocks"], part[col], ls=ls, marker=marker, color=colors[name], ms=4)
        ax.set_xscale("log", base=2)
        ax.set_ylim(0, 1)
        ax.set_xlabel("engine capacity (blocks, null block included)")
        ax.set_ylabel("cached prompt tokens / prompt tokens")
        ax.set_title(f"{bs}-token blocks")
    handles = [Line2D([], [], color=colors[n], lw=2, label=n) for n in names]
    handles += [Line2D([], [], color="#666666", ls=ls, marker=m, label=label) for _, ls, m, label in styles]
    fig.legend(handles=handles, loc="lower center", ncol=4, frameon=False, bbox_to_anchor=(0.5, -0.14))
    fig.suptitle("vLLM vs batched and sequential replays at each engine capacity")
    fig.tight_layout(rect=(0, 0.07, 1, 0.95))
    return save_figure(fig, out_stem)
