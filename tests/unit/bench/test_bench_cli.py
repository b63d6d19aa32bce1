"""`metarec benchmark` keeps its progress until the report is written, and says when it cannot go on."""

import json
import subprocess
import sys

from tests.fixtures import write_ml100k


def test_benchmark_cli_progress_folder(tmp_path):
    data = write_ml100k(tmp_path / "ml-100k")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "metarec.cli", "--no-progress", "benchmark", "--dataset", "ml-100k", "--data-dir",
           str(data), "--methods", "popularity,itemknn", "--shots", "1", "--seeds", "1", "--out", str(out)]
    first = subprocess.run(cmd, check=True, capture_output=True, text=True)
    assert (out / "report.md").is_file() and not (out / "progress").exists()  # removed once the report is out
    assert "K=1 test NDCG@10: popularity 0." in first.stdout and ", itemknn 0." in first.stdout
    # progress left by a run with other settings: refused with the reason, exit code 2; --restart clears it
    (out / "progress").mkdir()
    (out / "progress" / "config.json").write_text(json.dumps({"config": {"shots": [5]}, "data": {}}))
    assert subprocess.run(cmd, capture_output=True, text=True).returncode == 0  # nothing saved under those: no bind
    (out / "progress").mkdir()
    (out / "progress" / "config.json").write_text(json.dumps({"config": {"shots": [5]}, "data": {}}))
    (out / "progress" / "0-popularity.json").write_text("{}")  # a piece saved under other settings
    bad = subprocess.run(cmd, capture_output=True, text=True)
    assert bad.returncode == 2 and "progress of a run with other settings" in bad.stderr and "--restart" in bad.stderr
    subprocess.run(cmd + ["--restart"], check=True, capture_output=True, text=True)
    assert not (out / "progress").exists()


def test_version():
    from metarec import __version__

    r = subprocess.run([sys.executable, "-m", "metarec.cli", "--version"], check=True, capture_output=True, text=True)
    assert r.stdout.strip() == f"metarec {__version__}"


def test_benchmark_cli_says_which_methods_k_0_leaves_out(tmp_path):
    data = write_ml100k(tmp_path / "ml-100k")
    r = subprocess.run([sys.executable, "-m", "metarec.cli", "--no-progress", "benchmark", "--dataset", "ml-100k",
                        "--data-dir", str(data), "--methods", "popularity,itemknn", "--shots", "0", "--seeds", "1",
                        "--out", str(tmp_path / "out")], check=True, capture_output=True, text=True)
    assert "K=0 test NDCG@10: popularity 0." in r.stdout and "itemknn not run" in r.stdout


def test_benchmark_cli_tunes_at_the_validation_k_it_is_given(tmp_path):
    data = write_ml100k(tmp_path / "ml-100k")
    cmd = [sys.executable, "-m", "metarec.cli", "--no-progress", "benchmark", "--dataset", "ml-100k", "--data-dir",
           str(data), "--methods", "popularity", "--shots", "1", "--seeds", "1", "--out", str(tmp_path / "out")]
    subprocess.run(cmd + ["--val-shots", "2"], check=True, capture_output=True, text=True)
    assert "early-stop on validation users' NDCG@10 at K = 2." in (tmp_path / "out" / "report.md").read_text()
    bad = subprocess.run(cmd + ["--val-shots", "10000"], capture_output=True, text=True)
    assert bad.returncode == 2 and "no validation user has more than 10000 interactions" in bad.stderr
    subprocess.run(cmd + ["--val-shots", "each", "--shots", "1,2"], check=True, capture_output=True, text=True)
    assert "fitted once per K, tuned and early-stopped on validation users' NDCG@10 at that K" in (
        tmp_path / "out" / "report.md").read_text()
    bad = subprocess.run(cmd + ["--val-shots", "five"], capture_output=True, text=True)
    assert bad.returncode == 2 and "--val-shots takes one K (an integer) or 'each', got 'five'" in bad.stderr
