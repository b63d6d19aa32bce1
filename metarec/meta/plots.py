"""The meta-training figure: validation NDCG@10 and training loss against the step (`training.png`)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


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
