"""The benchmark's figure: NDCG@10 against the number of shots, one line per method, CI bands."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from metarec.data.protocol import HEADLINE  # noqa: E402
from metarec.bench.stats import mean_ci  # noqa: E402


def plot_ndcg_vs_shots(res, path: Path) -> None:
    """Write the benchmark figure (test NDCG@10 against K, one line per method, 95% bands) to `path`."""
    import pandas as pd

    df = pd.DataFrame(res.records)
    df = df[(df["split"] == "test") & (df["scenario"] == "all") & (df["metric"] == HEADLINE)]
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    shots = sorted(df["shots"].unique())
    lines, names = [], []
    for m in sorted(df["method"].unique()):
        stats = [mean_ci(df[(df["method"] == m) & (df["shots"] == k)]["value"].astype(float)) for k in shots]
        means = [s[0] for s in stats]
        half = [0.0 if s[1] != s[1] else s[1] for s in stats]
        (line,) = ax.plot(shots, means, marker="o")
        lines.append(line)
        names.append(m)
        ax.fill_between(shots, [a - h for a, h in zip(means, half)], [a + h for a, h in zip(means, half)],
                        color=line.get_color(), alpha=0.15)
    ax.set_xlabel("support interactions K")
    ax.set_ylabel("NDCG@10 (test users, full catalog)")
    ax.set_xticks(shots)
    ax.set_title(f"{res.config.dataset}: cold-start NDCG@10 vs K ({res.config.seeds} seeds, 95% CI)")
    ax.grid(alpha=0.3)
    if lines:  # explicit handles: matplotlib would drop a label that starts with "_" (a method may)
        ax.legend(lines, names, fontsize=8, ncol=2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
