"""`metarec meta-train` and `metarec recommend`."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Optional

import typer

from metarec.cli.common import (DataDirOpt, DatasetOpt, ItemFieldsOpt, JsonOpt, RetrievalMinOpt, RetrievalOpt, console,
                                emit_json, fail, item_template, load_model, parse_ints, say_progress)
from metarec.core.errors import ConfigError, MetarecError
from metarec.encoders.adapters import AdapterConfig
from metarec.meta.learners import MetaConfig
from metarec.meta.trainer import TrainConfig
from metarec.data.protocol import VAL_SHOTS
from metarec.data.splits import DEFAULT_SHOTS
from metarec.meta.train import DEFAULT_META
from metarec.models.retrieval import RetrievalConfig

_T, _M, _A = TrainConfig(), DEFAULT_META, AdapterConfig()  # the CLI's defaults are the library's


def meta_train(
    dataset: DatasetOpt,
    out: Path = typer.Option(..., "--out", help="Model folder (safetensors + JSON); an unfinished run there resumes."),
    data_dir: DataDirOpt = None,
    seed: int = typer.Option(0, help="Seed of the split (validation users) and of training."),
    val_shots: int = typer.Option(VAL_SHOTS, help="K at which validation users are scored for the start search and early "
                                  "stopping (the support size you serve most); the start is also chosen at K = 1 and "
                                  "10 and early stopping reads the mean over the three."),
    steps: int = typer.Option(_T.steps, help="Outer (meta) steps at most; early stopping may end sooner."),
    meta_batch: int = typer.Option(_T.meta_batch, help="Users (tasks) per meta-batch."),
    lr: float = typer.Option(_T.lr, help="Outer Adam learning rate."),
    algorithm: str = typer.Option(_M.algorithm, help="maml, fomaml, metasgd or anil."),
    adapt: str = typer.Option(_M.adapt, help="Parameters adapted per user: head or all."),
    inner_steps: int = typer.Option(_M.inner_steps, help="Inner-loop gradient steps."),
    inner_lr: float = typer.Option(_M.inner_lr, help="Inner-loop learning rate."),
    loss: str = typer.Option(_M.loss, help="softmax, bce, bpr or mse."),
    outer_loss: Optional[str] = typer.Option(
        _M.outer_loss, help="Query (meta-training) loss: approx_ndcg (smooth NDCG@10), softmax, bce, bpr, or mse "
                            "with --loss mse."),
    backend: str = typer.Option("functional", help="functional (batched) or learn2learn (per task)."),
    model: Optional[str] = typer.Option(None, help="Text encoder: HF model id or folder (default: bundled MiniLM)."),
    resume: bool = typer.Option(True, "--resume/--restart", help="Continue a run found in --out."),
    init_from: Optional[Path] = typer.Option(None, "--init-from", help="Start from a model meta-trained on another "
                                             "log (same encoder): its projections and head carry over."),
    tensorboard: Optional[str] = typer.Option(None, help="Write TensorBoard logs to this folder."),
    device: str = typer.Option("cpu", help="Where the network trains: cpu, cuda, cuda:N or auto."),
    cuda_graphs: str = typer.Option(_T.cuda_graphs, help="Replay each meta-step as a CUDA graph: auto (on CUDA "
                                    "with the functional backend), on (that, or an error) or off."),
    adapters: bool = typer.Option(False, "--adapters", help="Also train LoRA adapters of the text encoder (peft); "
                                  "the catalog is re-encoded at each validation."),
    adapter_rank: int = typer.Option(_A.rank, help="LoRA rank, with --adapters."),
    adapter_lr: float = typer.Option(_A.lr, help="The adapters' learning rate, with --adapters."),
    adapter_items: int = typer.Option(_A.items_per_step, help="Item texts re-encoded with gradients per meta-step, "
                                      "with --adapters."),
    item_fields: ItemFieldsOpt = None,
) -> None:
    """Meta-train the scoring head on warm users (pre-T); early-stop on validation users.

    Shows progress bars on a terminal and one log line per step of the work (each start tried,
    each validation, with the time left) on stderr either way; an unfinished run resumes and says
    from which step."""
    from metarec.core.distributed import init_from_env, is_main, shutdown
    from metarec.core.progress import set_progress
    from metarec.meta.train import meta_train as train_model
    from metarec.data import load_dataset
    from metarec.encoders import EncoderConfig

    init_from_env(device)  # under torchrun: join the process group (data-parallel meta-training)
    if is_main():
        say_progress()
    else:
        set_progress(False)  # rank 0 reports for all

    try:
        template = item_template(item_fields)  # a bad option is refused before the data is read
        model = train_model(
            load_dataset(dataset, data_dir), out, seed=seed, resume=resume, device=device, val_shots=val_shots,
            meta=MetaConfig(algorithm=algorithm, adapt=adapt, inner_steps=inner_steps, inner_lr=inner_lr,
                            loss=loss, outer_loss=outer_loss, backend=backend),
            train=TrainConfig(steps=steps, meta_batch=meta_batch, lr=lr, tensorboard=tensorboard, seed=seed,
                              cuda_graphs=cuda_graphs),
            encoder=EncoderConfig(model=model) if model else None, init_from=init_from,
            adapters=AdapterConfig(rank=adapter_rank, lr=adapter_lr, items_per_step=adapter_items) if adapters else None,
            template=template,
        )
    except MetarecError as e:
        fail(e)
    main = is_main()  # asked before leaving the process group, after which every rank is "rank 0 of 1"
    shutdown()
    t = model.trainer
    if main:
        console.print(f"saved {out} (best validation NDCG@10 {t.best:.4f} at step {t.best_step}; {t.step} steps run)")


def _parse_support(spec: str) -> tuple[list[str], list[float] | None]:
    ids, ratings = [], []
    for part in [p.strip() for p in spec.split(",") if p.strip()]:
        item, _, r = part.partition(":")
        ids.append(item)
        try:
            ratings.append(float(r) if r else float("nan"))
        except ValueError:
            raise ConfigError(f"--support entry {part!r}: expected ITEM or ITEM:RATING") from None
    return ids, ratings


def recommend(
    model: Path = typer.Option(..., "--model", help="Folder written by `metarec meta-train`."),
    support: str = typer.Option("", help="The user's interactions: ITEM[:RATING],... (empty = profile only)."),
    profile: Optional[str] = typer.Option(None, help="Profile text, e.g. 'A 24-year-old male technician.'"),
    k: int = typer.Option(10, "-k", help="How many items to recommend."),
    exclude: str = typer.Option("", help="Items never to recommend: ITEM,... (the support never is)."),
    device: str = typer.Option("cpu", help="Where to adapt and score: cpu, cuda, cuda:N or auto."),
    explain: bool = typer.Option(False, "--explain", help="Say why each item is there: the interactions and "
                                 "signals that raised its score."),
    json_out: JsonOpt = False,
    retrieval: RetrievalOpt = "auto",
    retrieval_min_items: RetrievalMinOpt = RetrievalConfig.min_items,
) -> None:
    """Adapt to one new user and print the top-k items with titles and scores."""
    try:
        rec = load_model(model, device, retrieval, retrieval_min_items)
        ids, ratings = _parse_support(support)
        user = rec.adapt(ids, ratings=ratings, profile=profile)
        rows = user.ranked(k, exclude=[x.strip() for x in exclude.split(",") if x.strip()], explain=explain)
    except MetarecError as e:
        fail(e)
    if not rec.titles:  # a model without titles shows its item ids
        for r in rows:
            r["title"] = str(r["item_id"])
    if json_out:
        emit_json({"support": ids, "profile": profile, "recommendations": rows})
        return
    from rich.table import Table

    table = Table(title=f"top {k} for a user with {len(ids)} interaction(s)")
    for col in ("rank", "item_id", "title", "score", *(("why",) if explain else ())):
        table.add_column(col)
    for r in rows:
        table.add_row(str(r["rank"]), str(r["item_id"]), r["title"], f"{r['score']:.3f}",
                      *((r["because"],) if explain else ()))
    console.print(table)


def recommend_many(
    model: Path = typer.Option(..., "--model", help="Folder written by `metarec meta-train`."),
    users: Path = typer.Option(..., "--users", help="Interactions of the users to serve (CSV or Parquet): "
                               "user_id, item_id, optionally rating and timestamp (sorts each user's rows)."),
    out: Path = typer.Option(..., "--out", help="Where to write the lists: .csv or .parquet."),
    profiles: Optional[Path] = typer.Option(None, help="Profile texts (CSV or Parquet): user_id, profile; a user "
                                            "found only here is served from the profile alone."),
    k: int = typer.Option(10, "-k", help="How many items per user."),
    device: str = typer.Option("cpu", help="Where to adapt and score: cpu, cuda, cuda:N or auto."),
    retrieval: RetrievalOpt = "auto",
    retrieval_min_items: RetrievalMinOpt = RetrievalConfig.min_items,
) -> None:
    """Adapt to many new users at once; write rows user_id, rank, item_id, title, score."""
    from metarec.core.config import atomic_write_bytes
    from metarec.data.loaders import CsvConfig, read_interactions

    if out.suffix not in (".csv", ".parquet"):
        fail(ConfigError(f"--out {out}: expected a .csv or .parquet file"))
    try:
        rec = load_model(model, device, retrieval, retrieval_min_items)
        log = read_interactions(users, CsvConfig(items=None), optional_ratings=True)
        texts = _read_profiles(profiles) if profiles else None
        recs = rec.recommend_many(log, k, profiles=texts)
    except MetarecError as e:
        fail(e)
    if not rec.titles:
        recs["title"] = recs["item_id"].astype(str)
    buf = io.BytesIO()
    if out.suffix == ".parquet":
        recs.to_parquet(buf, index=False)
    else:
        buf.write(recs.to_csv(index=False).encode())
    atomic_write_bytes(out, buf.getvalue())
    console.print(f"wrote {out}: top {k} for {recs['user_id'].nunique()} user(s)")


def _read_profiles(path: Path) -> dict[str, str]:
    from metarec.core.errors import DataFormatError
    from metarec.data.loaders import CsvConfig, read_frame

    df = read_frame(path, CsvConfig())
    missing = [c for c in ("user_id", "profile") if c not in df.columns]
    if missing:
        raise DataFormatError(f"missing column(s) {missing}; found {list(df.columns)}", path=path, line=1)
    dup = df["user_id"].duplicated().to_numpy()
    if dup.any():
        row = int(dup.argmax())
        raise DataFormatError(f"user {df['user_id'].iloc[row]!r} has a second profile", path=path,
                              line=None if path.suffix == ".parquet" else row + 2)
    return dict(zip(df["user_id"].astype(str), df["profile"].astype(str)))


def evaluate(
    model: Path = typer.Option(..., "--model", help="Folder written by `metarec meta-train`."),
    dataset: DatasetOpt = "ml-100k",
    data_dir: DataDirOpt = None,
    shots: str = typer.Option(",".join(map(str, DEFAULT_SHOTS)), help="Support sizes K."),
    users: str = typer.Option("test", help="Which new users of the model's split: test or val."),
    device: str = typer.Option("cpu", help="Where to adapt and score: cpu, cuda, cuda:N or auto."),
    json_out: JsonOpt = False,
) -> None:
    """Score a trained model on the held-out new users of the split it was trained with."""
    from rich.table import Table

    from metarec.bench.evaluate import evaluate_model
    from metarec.data import load_dataset

    try:
        rows = evaluate_model(model, load_dataset(dataset, data_dir), parse_ints(shots, "--shots"), which=users,
                              device=device)
    except MetarecError as e:
        fail(e)
    if json_out:
        emit_json({"model": str(model), "users": users, "rows": rows})
        return
    shown = ("ndcg@10", "recall@10", "map@10", "hit@10")  # all of SUMMARY with --json
    table = Table(title=f"{model} on {users} users (mean over users ± 95% CI)")
    for col in ("K", "users", *shown):
        table.add_column(col, no_wrap=True)
    for r in rows:
        table.add_row(str(r["k"]), str(r["users"]),
                      *(f"{r[m]:.4f}±{r[m + ' ci']:.3f}" if m in r else "-" for m in shown))
    console.print(table)
