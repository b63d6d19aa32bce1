"""The benchmark's figure: NDCG@10 against the number of shots, one line per method, CI bands."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from metarec.bench.evaluate import HEADLINE  # noqa: E402
from metarec.bench.stats import mean_ci  # noqa: E402


def plot_ndcg_vs_shots(res, path: Path) -> None:
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


def plot_training(history: list[dict], best_step: int, path: Path, title: str = "meta-training",
                  val_label: str = "validation NDCG@10") -> None:
    """Validation NDCG@10 (and the mean training loss since the previous evaluation) against the
    meta-step, from a trainer's history, with the kept step marked: whether training helped, and
    when early stopping gave up, at a glance."""
    steps = [h["step"] for h in history]
    val = [h["val"] for h in history]
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    ax.plot(steps, val, marker="o", color="C0", label=val_label)
    if best_step in steps:
        ax.axvline(best_step, color="C2", linestyle="--", label=f"kept: step {best_step}")
    ax.set_xlabel("meta-step")
    ax.set_ylabel("validation NDCG@10", color="C0")
    loss = [(h["step"], h["loss"]) for h in history if h.get("loss") is not None]
    handles, labels = ax.get_legend_handles_labels()
    if loss:
        ax2 = ax.twinx()
        (ln,) = ax2.plot([s for s, _ in loss], [v for _, v in loss], color="C1", alpha=0.7, label="training loss")
        ax2.set_ylabel("training loss (mean since the last evaluation)", color="C1")
        handles.append(ln)
        labels.append("training loss")
    ax.legend(handles, labels, fontsize=8, loc="best")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
