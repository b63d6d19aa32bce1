"""`metarec benchmark` keeps its progress until the report is written, and says when it cannot go on."""

import json
import subprocess
import sys

from tests.fixtures import run_cli, write_ml100k


def test_benchmark_cli_progress_folder(tmp_path):
    data = write_ml100k(tmp_path / "ml-100k")
    out = tmp_path / "out"
    cmd = ["--no-progress", "benchmark", "--dataset", "ml-100k", "--data-dir",
           data, "--methods", "popularity,itemknn", "--shots", "1", "--seeds", "1", "--out", out]
    first = run_cli(cmd)
    assert (out / "report.md").is_file() and not (out / "progress").exists()  # removed once the report is out
    assert "K=1 test NDCG@10: popularity 0." in first.stdout and ", itemknn 0." in first.stdout
    # progress left by a run with other settings: refused with the reason, exit code 2; --restart clears it
    (out / "progress").mkdir()
    (out / "progress" / "config.json").write_text(json.dumps({"config": {"shots": [5]}, "data": {}}))
    assert run_cli(cmd).exit_code == 0  # nothing saved under those: no bind
    (out / "progress").mkdir()
    (out / "progress" / "config.json").write_text(json.dumps({"config": {"shots": [5]}, "data": {}}))
    (out / "progress" / "0-popularity.json").write_text("{}")  # a piece saved under other settings
    bad = run_cli(cmd, check=False)
    assert bad.exit_code == 2 and "progress of a run with other settings" in bad.stderr and "--restart" in bad.stderr
    run_cli(cmd + ["--restart"])
    assert not (out / "progress").exists()


def test_version():  # a separate process: `python -m metarec.cli` itself is what is tested
    from metarec import __version__

    r = subprocess.run([sys.executable, "-m", "metarec.cli", "--version"], check=True, capture_output=True, text=True)
    assert r.stdout.strip() == f"metarec {__version__}"


def test_benchmark_cli_says_which_methods_k_0_leaves_out(tmp_path):
    data = write_ml100k(tmp_path / "ml-100k")
    r = run_cli(["--no-progress", "benchmark", "--dataset", "ml-100k", "--data-dir", data, "--methods",
                 "popularity,itemknn", "--shots", "0", "--seeds", "1", "--out", tmp_path / "out"])
    assert "K=0 test NDCG@10: popularity 0." in r.stdout and "itemknn not run" in r.stdout


def test_benchmark_cli_tunes_at_the_validation_k_it_is_given(tmp_path):
    data = write_ml100k(tmp_path / "ml-100k")
    cmd = ["--no-progress", "benchmark", "--dataset", "ml-100k", "--data-dir", data, "--methods", "popularity",
           "--shots", "1", "--seeds", "1", "--out", tmp_path / "out"]
    run_cli(cmd + ["--val-shots", "2"])
    assert "early-stop on validation users' NDCG@10 at K = 2." in (tmp_path / "out" / "report.md").read_text()
    bad = run_cli(cmd + ["--val-shots", "10000"], check=False)
    assert bad.exit_code == 2 and "no validation user has more than 10000 interactions" in bad.stderr
    run_cli(cmd + ["--val-shots", "each", "--shots", "1,2"])
    assert "fitted once per K, tuned and early-stopped on validation users' NDCG@10 at that K" in (
        tmp_path / "out" / "report.md").read_text()
    bad = run_cli(cmd + ["--val-shots", "five"], check=False)
    assert bad.exit_code == 2 and "--val-shots takes one K (an integer) or 'each', got 'five'" in " ".join(bad.stderr.split())
