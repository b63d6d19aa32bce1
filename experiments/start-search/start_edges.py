"""metarec's start search with and without going past a winning grid edge, under the protocol.

`metarec` extends the content weight past 2 and the inner rate past 0.1 / 0.5 while the edge wins
on validation users (StartSearch.content_step/content_max, lr_step/lr_range); `metarec:fixed-grid`
is the same method held to the grid it had before (content <= 2, rates 0.1 and 0.5). Run on
development logs, not on the benchmarks' own data: a text-rich log (titles name their topic) and the
same interactions with weak titles, both from a seed the committed benchmarks do not use.

    python benchmarks/synthetic_data.py --items 2000 --users 1500 --implicit --topic-titles 0.9 --seed 2 --out /tmp/dev-text
    python benchmarks/start_edges.py --data-dir /tmp/dev-text --out benchmarks/results/start-edges-dev-text
    python benchmarks/paired.py benchmarks/results/start-edges-dev-text --method metarec [--split val]
"""

from __future__ import annotations

import argparse

from metarec.bench.runner import BenchmarkConfig
from metarec.methods.metarec import MetaRecMethod
from metarec.meta.start import StartSearch
from metarec.methods.registry import register
from results_io import run_report


@register
class FixedGrid(MetaRecMethod):
    """metarec with the start search held to its grid: no content weight past 2, rates 0.1 and 0.5 only."""

    name = "metarec:fixed-grid"

    def __init__(self, seed: int = 0, **kwargs) -> None:
        super().__init__(seed, start=StartSearch(content_max=2.0, lr_range=(0.1, 0.5)), **kwargs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--dataset", default="csv")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--shots", default="1,3,5,10")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    cfg = BenchmarkConfig(dataset=args.dataset, data_dir=args.data_dir, methods=("metarec", FixedGrid.name),
                          shots=tuple(int(s) for s in args.shots.split(",")), seeds=args.seeds)
    run_report(cfg, args.out)


if __name__ == "__main__":
    main()
