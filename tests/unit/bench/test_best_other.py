"""The report's "metarec vs the best other method at each K" rows, against a hand-made result."""

from types import SimpleNamespace

import pandas as pd
import pytest
from scipy import stats

from metarec.bench.report import _against_best_other
from metarec.bench.runner import BenchmarkConfig

SCORES = {  # K -> method -> per-user NDCG@10 (users 1..4, one seed)
    1: {"metarec": [0.5, 0.6, 0.7, 0.8], "ease": [0.4, 0.5, 0.6, 0.9], "popularity": [0.3, 0.3, 0.3, 0.3],
        "pooled-finetune": [0.5, 0.6, 0.5, 0.7], "metarec:one-start": [0.9, 0.9, 0.9, 0.9]},
    5: {"metarec": [0.5, 0.5, 0.5, 0.5], "ease": [0.1, 0.2, 0.1, 0.2], "popularity": [0.6, 0.7, 0.6, 0.9],
        "pooled-finetune": [0.5, 0.5, 0.5, 0.5], "metarec:one-start": [0.0, 0.0, 0.0, 0.0]},
}


def _result():
    pu = pd.DataFrame([{"method": m, "shots": k, "seed": 0, "user_id": u + 1, "split": "test", "ndcg@10": v}
                       for k, by in SCORES.items() for m, vals in by.items() for u, v in enumerate(vals)])
    records = [{"method": m, "shots": k, "seed": 0, "split": "test", "scenario": "all", "metric": "ndcg@10",
                "value": sum(vals) / len(vals)} for k, by in SCORES.items() for m, vals in by.items()]
    cfg = BenchmarkConfig(dataset="fixture", methods=("metarec", "ease", "popularity", "pooled-finetune"),
                          shots=(1, 5), seeds=1)
    return SimpleNamespace(config=cfg, records=records), pu


def test_best_other_excludes_metarec_and_its_variants_and_is_paired():
    res, pu = _result()
    rows = [r for r in _against_best_other(res, pu) if r.startswith("| 1 ") or r.startswith("| 5 ")]
    k1, k5 = (r.strip("|").split("|") for r in rows)
    # K = 1: ease (0.6) is the best other; metarec:one-start (0.9) is a variant and does not count
    assert k1[1].strip() == "ease" and float(k1[2]) == pytest.approx(0.65) and float(k1[3]) == pytest.approx(0.6)
    assert float(k1[4]) == pytest.approx(0.05)
    p = stats.ttest_rel(SCORES[1]["metarec"], SCORES[1]["ease"]).pvalue
    assert float(k1[5]) == pytest.approx(p, rel=1e-2)
    assert float(k1[7]) == pytest.approx(0.075)  # vs pooled-finetune (0.575): +0.2 and +0.1 on two users
    # K = 5: popularity leads, metarec is behind by 0.2
    assert k5[1].strip() == "popularity" and float(k5[4]) == pytest.approx(-0.2)


def test_no_section_without_metarec():
    res, pu = _result()
    res.records = [r for r in res.records if not r["method"].startswith("metarec")]
    assert _against_best_other(res, pu) == []
