"""Load benchmark of the stateful service: concurrent clients send events and read fresh lists for
simulated new users, with and without micro-batching, beside today's stateless /recommend.

    python benchmarks/serve_users_load.py --model MODEL_DIR [--clients 16] [--requests 500] [--users 1000]

Four servers on 127.0.0.1, one after the other, each under `clients` x `requests` requests:
1. stateless `/recommend` (random users of 1-10 interactions), no batching: the reference (today's);
2. the same with micro-batching (`--batch-wait-ms`);
3. `/users`: each request posts an event for one of `users` simulated users (half the time) or reads
   that user's fresh top 10 (users with no event stored yet get an event first), no batching;
4. the same with micro-batching.
Then one client alone against server 4: an event followed by a fresh top 10, `--single` times.
Reports throughput, p50 / p99 latency per endpoint, non-2xx counts (must be 0) and the server's
resident memory before and after; writes `serve_users_load.{md,json}` to --out. Exit 1 on any non-2xx.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import requests
from results_io import command_line, write_result


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Server:
    """`metarec serve` in a subprocess on a free port, with its own SQLite file."""

    def __init__(self, model: Path, batch_wait_ms: float, db: str) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "metarec.cli", "serve", "--model", str(model), "--port", str(self.port),
             "--batch-wait-ms", str(batch_wait_ms), "--db", db],
            env={**os.environ, "METAREC_NO_PROGRESS": "1"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(600):
            try:
                if requests.get(self.base + "/health", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                time.sleep(0.2)
        raise SystemExit("the server did not come up within 2 minutes")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def _stateless(base: str, ids: list, rng: np.random.Generator, session: requests.Session) -> tuple[str, int]:
    k = int(rng.integers(1, 11))
    support = [{"item_id": ids[int(i)], "rating": float(rng.integers(1, 6))}
               for i in rng.choice(len(ids), k, replace=False)]
    return "POST /recommend", session.post(base + "/recommend", json={"support": support, "k": 10}, timeout=120).status_code


def _users_request(base: str, ids: list, rng: np.random.Generator, session: requests.Session, n_users: int,
                   started: set, guard: threading.Lock) -> list[tuple[str, int, float]]:
    u = f"u{int(rng.integers(n_users))}"
    with guard:
        known = u in started  # a user counts as started once their first event is stored
    out = []
    if not known or rng.random() < 0.5:
        t0 = time.perf_counter()
        ev = {"events": [{"item_id": ids[int(rng.integers(len(ids)))], "rating": float(rng.integers(1, 6)),
                          "time": time.time()}]}
        code = session.post(f"{base}/users/{u}/events", json=ev, timeout=120).status_code
        out.append(("POST /users/{id}/events", code, time.perf_counter() - t0))
        if code == 200:
            with guard:
                started.add(u)
    else:
        t0 = time.perf_counter()
        code = session.get(f"{base}/users/{u}/recommendations", params={"k": 10}, timeout=120).status_code
        out.append(("GET /users/{id}/recommendations", code, time.perf_counter() - t0))
    return out


def _load(base: str, ids: list, clients: int, n: int, mode: str, n_users: int, seed: int) -> dict:
    started, guard = set(), threading.Lock()

    def client(c: int) -> list:
        rng = np.random.default_rng([seed, c, 41])
        rows = []
        with requests.Session() as s:
            for _ in range(n):
                if mode == "stateless":
                    t0 = time.perf_counter()
                    path, code = _stateless(base, ids, rng, s)
                    rows.append((path, code, time.perf_counter() - t0))
                else:
                    rows += _users_request(base, ids, rng, s, n_users, started, guard)
        return rows

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        rows = [r for part in pool.map(client, range(clients)) for r in part]
    wall = time.perf_counter() - t0
    lat = defaultdict(list)
    for path, _, dt in rows:
        lat[path].append(dt * 1000)
    codes = Counter(str(c) for _, c, _ in rows)
    return {"requests": len(rows), "wall_s": round(wall, 2), "requests_per_s": round(len(rows) / wall, 1),
            "status_counts": dict(sorted(codes.items())),
            "non_2xx": sum(n for c, n in codes.items() if not c.startswith("2")),
            "latency_ms": {p: {"n": len(v), "p50": round(float(np.percentile(v, 50)), 1),
                               "p99": round(float(np.percentile(v, 99)), 1)} for p, v in sorted(lat.items())}}


def _single(base: str, ids: list, n: int, seed: int) -> dict:
    """One client: an event, then the same user's fresh top 10; the pair's latency."""
    rng = np.random.default_rng([seed, 43])
    pairs, codes = [], Counter()
    with requests.Session() as s:
        for j in range(n):
            t0 = time.perf_counter()
            ev = {"events": [{"item_id": ids[int(rng.integers(len(ids)))], "rating": 4.0}]}
            codes[str(s.post(f"{base}/users/solo{j % 50}/events", json=ev, timeout=60).status_code)] += 1
            codes[str(s.get(f"{base}/users/solo{j % 50}/recommendations", params={"k": 10}, timeout=60).status_code)] += 1
            pairs.append((time.perf_counter() - t0) * 1000)
    return {"pairs": n, "p50_ms": round(float(np.percentile(pairs, 50)), 1),
            "p99_ms": round(float(np.percentile(pairs, 99)), 1), "status_counts": dict(codes)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, type=Path)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--requests", type=int, default=500, help="requests per client")
    ap.add_argument("--users", type=int, default=1000, help="simulated new users")
    ap.add_argument("--batch-wait-ms", type=float, default=2.0)
    ap.add_argument("--single", type=int, default=200, help="event + top-10 pairs timed with one client")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="benchmarks/results/serve-load")
    args = ap.parse_args()

    from metarec.meta.recommender import MetaRecommender

    ids = list(MetaRecommender.load(args.model).item_ids)
    ids = [i.item() if hasattr(i, "item") else i for i in ids]
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, mode, wait in (("stateless /recommend, no batching", "stateless", 0.0),
                                 (f"stateless /recommend, batching ({args.batch_wait_ms:g} ms)", "stateless",
                                  args.batch_wait_ms),
                                 ("/users, no batching", "users", 0.0),
                                 (f"/users, batching ({args.batch_wait_ms:g} ms)", "users", args.batch_wait_ms)):
            server = Server(args.model, wait, str(Path(tmp) / f"{mode}-{wait}.sqlite"))
            try:
                before = _rss_mb(server.proc.pid)
                runs[name] = _load(server.base, ids, args.clients, args.requests, mode, args.users, args.seed)
                runs[name]["rss_mb_before"], runs[name]["rss_mb_after"] = round(before, 1), round(
                    _rss_mb(server.proc.pid), 1)
                if wait > 0 and mode == "users":
                    single = _single(server.base, ids, args.single, args.seed)
            finally:
                server.stop()
    ref = runs["stateless /recommend, no batching"]["requests_per_s"]
    lines = [f"{args.clients} clients x {args.requests} requests each; {args.users} simulated users.", "",
             "| server | requests/s | vs stateless | endpoint p50 / p99 ms | non-2xx | RSS MB before -> after |",
             "|---|---|---|---|---|---|"]
    for name, r in runs.items():
        lat = "; ".join(f"{p}: {v['p50']} / {v['p99']}" for p, v in r["latency_ms"].items())
        lines.append(f"| {name} | {r['requests_per_s']} | {r['requests_per_s'] / ref:.2f}x | {lat} | {r['non_2xx']} | "
                     f"{r['rss_mb_before']} -> {r['rss_mb_after']} |")
    lines += ["", f"One client, an event then a fresh top 10 ({single['pairs']} pairs, batching on): p50 "
              f"{single['p50_ms']} ms, p99 {single['p99_ms']} ms; statuses {single['status_counts']}."]
    body = "\n".join(lines)
    print(body)
    write_result(args.out, "serve_users_load", {"command": command_line(), "runs": runs, "single_client": single},
                 "Stateful service under load", command_line(), body)
    bad = sum(r["non_2xx"] for r in runs.values()) + sum(n for c, n in single["status_counts"].items()
                                                         if not c.startswith("2"))
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
