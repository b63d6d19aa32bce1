"""How a benchmark script records what it measured: the command line that ran it, and a JSON file
plus a Markdown table under `benchmarks/results/` that both name that command."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path


def command_line() -> str:
    """This run's command, as it would be typed again."""
    return "python " + " ".join(shlex.quote(a) for a in sys.argv)


def describe(checkout: str) -> str:
    """The checkout's short commit, with '+changes' when its tracked files differ from it."""
    rev = subprocess.run(["git", "-C", checkout, "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True).stdout.strip() or "?"
    dirty = subprocess.run(["git", "-C", checkout, "diff", "--quiet", "HEAD", "--", "metarec"]).returncode
    return rev + ("+changes" if dirty else "")


def checkout_env(root: str) -> dict[str, str]:
    """The environment for a worker process that imports `metarec` from the checkout at `root`."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}


def metarec_root() -> str:
    """The checkout this process imported `metarec` from (a worker reports it for `check_checkout`)."""
    import metarec

    return str(Path(metarec.__file__).parent.parent)


def check_checkout(root: str, imported: str) -> None:
    """Stop unless a worker meant for `root` imported `metarec` from there."""
    if Path(imported).resolve() != Path(root).resolve():
        raise SystemExit(f"{root}: the worker imported metarec from {imported}, not from there")


def checkout_rounds(script: str | Path, roots: list[str], worker_args: list[str], rounds: int, what: str,
                    show=None) -> tuple[dict[str, dict], dict[str, list[dict]]]:
    """Time each checkout in its own long-lived worker, alternated: start `script --worker
    *worker_args` once per checkout with that checkout's `metarec` first on the path, read each
    worker's first JSON line (it must name the checkout it imported, `metarec_root`), then in every
    round send each worker "round R" in turn and read its JSON reply. A round whose replies carry
    different "digest"s stops the run (`what`: what the workers built, for the message). `show`
    (root, reply) is called on each reply, for progress. Returns (first lines, replies per round)."""
    procs = {root: subprocess.Popen([sys.executable, str(script), "--worker", *worker_args], env=checkout_env(root),
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for root in roots}
    try:
        info = {}
        for root, p in procs.items():
            info[root] = _reply(p, root)
            check_checkout(root, info[root]["metarec"])
        runs: dict[str, list[dict]] = {r: [] for r in roots}
        for rnd in range(rounds):
            for root, p in procs.items():
                p.stdin.write(f"round {rnd}\n")
                p.stdin.flush()
                runs[root].append(_reply(p, root))
                if show is not None:
                    show(root, runs[root][-1])
            if len({runs[r][-1]["digest"] for r in roots}) > 1:
                raise SystemExit(f"round {rnd}: the checkouts {what}")
    finally:
        for p in procs.values():
            p.stdin.close()
            p.wait()
    return info, runs


def _reply(proc: subprocess.Popen, root: str) -> dict:
    """The worker's next JSON line; a worker that died has printed its traceback above."""
    line = proc.stdout.readline()
    if not line:
        raise SystemExit(f"{root}: the worker exited (code {proc.wait()}); its error is printed above")
    return json.loads(line)


def run_meta(**extra) -> dict:
    """The command, the commit measured, Python, torch and its thread count (what a timing depends
    on), plus `extra`."""
    import torch

    return {"command": command_line(), "git": describe(metarec_root()), "python": platform.python_version(),
            "torch": torch.__version__, "threads": torch.get_num_threads(), **extra}


def torch_line(meta: dict) -> str:
    """The closing line of a timing table: "git G, torch X, N threads." from `run_meta`'s fields."""
    return f"git {meta['git']}, torch {meta['torch']}, {meta['threads']} threads."


def write_result(out: str | Path, stem: str, payload: dict, title: str, command: str, body: str) -> None:
    """`out/stem.json` (payload) and `out/stem.md` (title, the command, then body)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(payload, indent=2) + "\n")
    (out / f"{stem}.md").write_text(f"# {title}\n\nProduced by:\n\n```\n{command}\n```\n\n{body}\n")


def publish(out: str | Path, stem: str, title: str, table: str, note: str, payload: dict, **extra) -> dict:
    """A timing benchmark's ending: print `table`, then write `out/stem.json` ({"meta": run_meta(**extra),
    **payload}) and `out/stem.md` (title, command, table, `note` and the torch line). Returns the meta."""
    print(table)
    meta = run_meta(**extra)
    write_result(out, stem, {"meta": meta, **payload}, title, meta["command"], f"{table}\n\n{note} {torch_line(meta)}")
    return meta


def checkout_parser(doc: str, *, items: int, users: int, rounds: int) -> argparse.ArgumentParser:
    """The arguments every `checkout_rounds` script shares: the checkouts to compare, the synthetic
    catalog's size, rounds, the output folder, and the hidden `--worker` that `checkout_rounds`
    starts each worker with (its value: the folder holding the synthetic log). The script adds its own."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--checkout", action="append", help="a checkout whose metarec to time (repeat; default: .)")
    ap.add_argument("--items", type=int, default=items)
    ap.add_argument("--users", type=int, default=users)
    ap.add_argument("--rounds", type=int, default=rounds, help="rounds; each times every checkout once")
    ap.add_argument("--out", default="benchmarks/results")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    return ap


def probe_parser(doc: str, *, seeds: int, steps: int | None = None, eval_every: int | None = None
                 ) -> argparse.ArgumentParser:
    """The arguments every validation-user probe shares (the dataset, its folder, seeds, output
    folder, and meta-steps with their evaluation interval where it trains); the script adds its own."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--dataset", default="ml-100k")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--seeds", type=int, default=seeds)
    if steps is not None:
        ap.add_argument("--steps", type=int, default=steps)
        ap.add_argument("--eval-every", type=int, default=eval_every)
    ap.add_argument("--out", default="benchmarks/results")
    return ap


def run_report(cfg, out: str | Path) -> None:
    """Run a benchmark (`metarec.bench.runner.BenchmarkConfig`) under the protocol, write its report,
    per-user CSV and plot under `out` with this command, and print the report."""
    from metarec.bench.report import write_artifacts
    from metarec.bench.runner import run_benchmark

    write_artifacts(run_benchmark(cfg), Path(out), command_line())
    print((Path(out) / "report.md").read_text())
