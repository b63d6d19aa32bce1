"""Load test of `metarec serve`: concurrent clients send random users drawn from the whole catalog
(new items included: alone, mixed with warm ones, or none) and the server must answer every one
without a 5xx.

    python benchmarks/serve_load.py --model MODEL_DIR [--clients 16] [--requests 200] [--out DIR]

Starts the server on 127.0.0.1 (a free port), sends `clients` x `requests` requests (POST /recommend,
/score and /recommend/batch; K from 0 to 20; ratings on the model's scale or none; a profile now
and then; a few deliberately bad requests, which must be 4xx), then stops it. Prints a table and
writes `serve_load.json` and `serve_load.md` to --out: status counts, throughput, and p50 / p99
latency per endpoint. Exits 1 if any response was a 5xx or a connection failed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import requests

PROFILES = ["A 24-year-old male technician.", "A 61-year-old retired woman who loves old films.",
            "Student, 19, likes anime and science fiction.", "é" * 40]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _user(rng: np.random.Generator, ids: list, new: np.ndarray, scale: tuple[float, float]) -> dict:
    kind = rng.choice(["new", "mixed", "warm", "none"], p=[0.3, 0.3, 0.3, 0.1])
    k = 0 if kind == "none" else int(rng.integers(1, 21))
    pool = {"new": new, "warm": np.flatnonzero(~np.isin(np.arange(len(ids)), new)),
            "mixed": np.arange(len(ids)), "none": np.zeros(0, np.int64)}[kind]
    if kind == "mixed" and len(new):  # at least one new item among warm ones
        picks = np.unique(np.concatenate([rng.choice(new, 1), rng.choice(pool, min(k, len(pool)), replace=False)]))
    else:
        picks = rng.choice(pool, min(k, len(pool)), replace=False)
    support = []
    for i in picks:
        row = {"item_id": ids[int(i)]}
        if rng.random() < 0.7:
            row["rating"] = float(rng.integers(int(scale[0]), int(scale[1]) + 1))
        support.append(row)
    user = {"support": support}
    if rng.random() < 0.2:
        user["profile"] = str(rng.choice(PROFILES))
    return user


def _request(rng: np.random.Generator, ids: list, new: np.ndarray, scale) -> tuple[str, dict, bool]:
    """(endpoint, body, whether it is deliberately bad)."""
    r = rng.random()
    if r < 0.03:  # bad on purpose: an unknown item, or a rating off the scale
        return "/recommend", {"support": [{"item_id": "no-such-item"}], "k": 5}, True
    if r < 0.06:
        return "/recommend", {"support": [{"item_id": ids[0], "rating": scale[1] + 10}]}, True
    if r < 0.70:
        return "/recommend", {**_user(rng, ids, new, scale), "k": int(rng.choice([5, 10, 20]))}, False
    if r < 0.90:
        items = [ids[int(i)] for i in rng.choice(len(ids), 5, replace=False)]
        return "/score", {**_user(rng, ids, new, scale), "items": items}, False
    users = [{"user_id": f"u{n}", **_user(rng, ids, new, scale)} for n in range(int(rng.integers(2, 9)))]
    return "/recommend/batch", {"users": users, "k": 10}, False


def _client(seed: int, n: int, base: str, ids: list, new: np.ndarray, scale) -> list[tuple]:
    rng = np.random.default_rng([seed, 31])
    out = []
    with requests.Session() as s:
        for _ in range(n):
            path, body, bad = _request(rng, ids, new, scale)
            t0 = time.perf_counter()
            try:
                code = s.post(base + path, json=body, timeout=120).status_code
            except requests.RequestException as e:
                code = f"error: {type(e).__name__}"
            out.append((path, code, bad, time.perf_counter() - t0))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, type=Path)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--requests", type=int, default=200, help="Requests per client.")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/serve-load"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from metarec.meta.recommender import MetaRecommender

    rec = MetaRecommender.load(args.model)
    ids, new = list(rec.item_ids), np.flatnonzero(~rec.warm)
    scale = (rec.info.rating_min, rec.info.rating_max)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "METAREC_NO_PROGRESS": "1"}
    server = subprocess.Popen([sys.executable, "-m", "metarec.cli", "serve", "--model", str(args.model),
                               "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(600):
            try:
                if requests.get(base + "/health", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        else:
            raise SystemExit("the server did not come up within 2 minutes")
        t0 = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            parts = pool.map(lambda c: _client(args.seed * 1000 + c, args.requests, base, ids, new, scale),
                             range(args.clients))
            rows = [r for part in parts for r in part]
        wall = time.perf_counter() - t0
    finally:
        server.terminate()
        server.wait(timeout=30)

    codes = Counter(str(c) for _, c, _, _ in rows)
    server_errors = sum(n for c, n in codes.items() if not c.isdigit() or int(c) >= 500)
    bad_answered_4xx = sum(1 for _, c, bad, _ in rows if bad and str(c).isdigit() and 400 <= int(c) < 500)
    good_not_2xx = sum(1 for _, c, bad, _ in rows if not bad and not (str(c).isdigit() and 200 <= int(c) < 300))
    lat = defaultdict(list)
    for path, _, _, dt in rows:
        lat[path].append(dt * 1000)
    result = {
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "model": str(args.model), "dataset": rec.info.dataset, "items": len(ids), "new_items": int(len(new)),
        "clients": args.clients, "requests": len(rows), "wall_s": round(wall, 2),
        "requests_per_s": round(len(rows) / wall, 1), "status_counts": dict(sorted(codes.items())),
        "server_errors": server_errors, "bad_requests": sum(1 for r in rows if r[2]),
        "bad_requests_answered_4xx": bad_answered_4xx, "valid_requests_not_2xx": good_not_2xx,
        "latency_ms": {p: {"n": len(v), "p50": round(float(np.percentile(v, 50)), 1),
                           "p99": round(float(np.percentile(v, 99)), 1)} for p, v in sorted(lat.items())},
        "machine": f"{platform.machine()}, {os.cpu_count()} cores", "python": platform.python_version(),
        "git": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip(),
    }
    lines = [f"# serve load: {args.clients} clients x {args.requests} requests", "",
             f"`{result['command']}` at {result['git']} ({result['machine']}); model: {rec.info.dataset}, "
             f"{len(ids)} items of which {len(new)} new.", "",
             f"- status counts: {result['status_counts']}; 5xx or failed connections: **{server_errors}**",
             f"- deliberately bad requests: {result['bad_requests']}, answered 4xx: {bad_answered_4xx}; "
             f"valid requests not 2xx: {good_not_2xx}",
             f"- {result['requests_per_s']} requests/s over {result['wall_s']} s", "",
             "| endpoint | requests | p50 ms | p99 ms |", "|---|---|---|---|"]
    lines += [f"| {p} | {v['n']} | {v['p50']} | {v['p99']} |" for p, v in result["latency_ms"].items()]
    report = "\n".join(lines) + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "serve_load.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "serve_load.md").write_text(report)
    print(report)
    return 1 if server_errors or good_not_2xx else 0


if __name__ == "__main__":
    raise SystemExit(main())
