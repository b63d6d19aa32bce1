"""`metarec benchmark`: the cold-start benchmark under protocol.md."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Optional

import typer

from metarec.data.protocol import VAL_SAMPLE, VAL_SHOTS
from metarec.data.splits import DEFAULT_SHOTS
from metarec.bench.evaluate import WARM_SAMPLE
from metarec.cli.common import DataDirOpt, DatasetOpt, ItemFieldsOpt, console, fail, item_template, parse_ints
from metarec.core.errors import MetarecError


def benchmark(
    dataset: DatasetOpt = "ml-100k",
    data_dir: DataDirOpt = None,
    methods: str = typer.Option("popularity,itemknn,ease,als,random", help="Comma-separated, or 'all'."),
    shots: str = typer.Option(",".join(map(str, DEFAULT_SHOTS)), help="Support sizes K."),
    seeds: int = typer.Option(5, help="Number of seeds (0..N-1)."),
    out: Path = typer.Option(..., "--out", help="Output folder for results.json, per_user.parquet, report.md, plot."),
    split: str = typer.Option("time", help="'time' (protocol) or 'random' (no timestamps)."),
    threshold: Optional[float] = typer.Option(None, help="Only query items rated >= this are relevant."),
    val_shots: str = typer.Option(str(VAL_SHOTS), help="K at which validation users are scored for tuning and early stopping "
                                  "(the support size you serve most), or 'each': every method fitted once per K, "
                                  "tuned at that K (K = 0 shares K = 1's fit)."),
    max_val_users: int = typer.Option(VAL_SAMPLE, help="Validation users that tuning and early stopping score "
                                      "(a fixed seeded sample when there are more; 0 = all)."),
    max_warm_users: int = typer.Option(WARM_SAMPLE, help="Returning warm users scored per K for the warm-user "
                                       "scenarios (a fixed seeded sample when there are more; 0 = all)."),
    device: str = typer.Option("cpu", help="Where metarec and pooled-finetune train and score: cpu, cuda, auto."),
    max_train_users: int = typer.Option(0, help="Fit every method on a seeded sample of this many warm users "
                                        "(0 = all): how methods do on a log with few users."),
    transfer_from: Optional[Path] = typer.Option(None, help="metarec and pooled-finetune start from this model, "
                                                 "meta-trained on another log (cross-domain transfer)."),
    restart: bool = typer.Option(False, "--restart", help="Discard the progress an interrupted run left in --out."),
    retrieval: str = typer.Option("off", help="How metarec and pooled-finetune score test users: 'off' (every item "
                                  "through the network), 'on' or 'auto' (FAISS candidates re-scored exactly; "
                                  "scores -inf elsewhere)."),
    adapters: bool = typer.Option(False, "--adapters", help="metarec and pooled-finetune also train LoRA adapters "
                                  "of the text encoder (peft)."),
    item_fields: ItemFieldsOpt = None,
) -> None:
    """Run methods x shots x seeds on new users; write tables, per-user results and a plot.

    Each finished (seed, method) is kept in --out/progress; after a crash, the same command goes on."""
    import shutil

    from metarec.bench.report import write_artifacts
    from metarec.bench.runner import BenchmarkConfig, run_benchmark

    command = "metarec " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    each = val_shots.strip() == "each"
    try:
        val_k = VAL_SHOTS if each else int(val_shots)
    except ValueError:
        raise typer.BadParameter(f"--val-shots takes one K (an integer) or 'each', got {val_shots!r}") from None
    try:
        cfg = BenchmarkConfig(dataset=dataset, data_dir=str(data_dir) if data_dir else None,
                              methods=tuple(m.strip() for m in methods.split(",") if m.strip()),
                              shots=parse_ints(shots, "--shots"), seeds=seeds, split=split,
                              relevance_threshold=threshold, val_shots=val_k, tune_each_k=each,
                              max_val_users=max_val_users or None,
                              max_warm_users=max_warm_users or None, device=device,
                              max_train_users=max_train_users or None,
                              method_options=_method_options(retrieval, transfer_from, adapters, item_fields))
        progress_dir = out / "progress"
        if restart:
            shutil.rmtree(progress_dir, ignore_errors=True)
        res = run_benchmark(cfg, progress_dir=progress_dir)
    except MetarecError as e:
        fail(e)
    write_artifacts(res, out, command)
    shutil.rmtree(progress_dir, ignore_errors=True)  # the report has it all now
    console.print(f"wrote {out}/report.md, results.json, per_user.parquet, ndcg_vs_shots.png")
    from metarec.bench.report import seed_means
    from metarec.bench.stats import mean_ci

    df = seed_means(res.records)
    df = df[df["metric"] == "ndcg@10"]
    for m, why in res.skipped.items():
        console.print(f"{m} skipped: {why}")
    for k in cfg.shots:
        parts = []
        for m in (m for m in cfg.resolved_methods() if m not in res.skipped):
            vals = df[(df["method"] == m) & (df["shots"] == k)]["value"].astype(float)
            parts.append(f"{m} {mean_ci(vals)[0]:.4f}" if len(vals) else f"{m} not run")
        console.print(f"K={k} test NDCG@10: " + ", ".join(parts))


def _method_options(retrieval: str, transfer_from: Path | None, adapters: bool, item_fields: str | None) -> dict:
    """Per-method options from the command line: the metarec family's, and the item text of every
    method that reads it."""
    own = {"retrieval": retrieval, **({"init_from": str(transfer_from)} if transfer_from else {}),
           **({"adapters": True} if adapters else {})}
    template = item_template(item_fields)
    text = {"template": template} if template is not None else {}
    return {"metarec": {**own, **text}, "pooled-finetune": {**own, **text}, "content-knn": dict(text)}
