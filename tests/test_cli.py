"""The command line: list, fit (with no partial output on failure), and the tour in quick mode."""
import subprocess
import sys
import warnings

import arviz as az
import numpy as np
import pandas as pd
import pytest

from apps.cli import main


def test_list(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for word in ["gmm", "delta", "normal", "mvn", "lowrank", "laplace", "flow", "custom", "nuts", "faithful"]:
        assert word in out


def _png(path):
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_fit_writes_summary_figures_and_inference_data(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["fit", "gmm", "--data", "faithful", "--method", "map", "--guide", "delta", "--K", "2",
                 "--steps", "150", "--restarts", "2", "--out", str(out), "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "loglik_per_datum" in printed
    assert sorted(p.name for p in out.iterdir()) == ["clusters.png", "loss.png", "posterior.nc", "summary.csv"]
    assert _png(out / "clusters.png") and _png(out / "loss.png")
    idata = az.from_netcdf(str(out / "posterior.nc"))
    assert idata.posterior["locs"].shape[-2:] == (2, 2)
    table = pd.read_csv(out / "summary.csv")
    assert table["loglik_per_datum"].iloc[0] < 0
    assert not list(tmp_path.glob(".*staging*"))


@pytest.mark.parametrize("args,message", [
    (["--data", "nope"], "unknown dataset 'nope'"),
    (["--data", "faithful", "--method", "nope"], "unknown method 'nope'"),
    (["--data", "faithful", "--guide", "nope"], "unknown guide 'nope'"),
    (["--data", "faithful", "--K", "0"], "n_components must be >= 1"),
    (["--data", "faithful", "--K", "300"], "more than the n_samples=272"),
    (["--data", "BADCSV"], "contains NaN"),
])
def test_fit_errors_leave_no_output(tmp_path, capsys, args, message):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\nnan,3\n4,5\n")
    args = [str(bad) if a == "BADCSV" else a for a in args]
    out = tmp_path / "out"
    code = main(["fit", "gmm", *args, "--steps", "5", "--out", str(out), "--no-progress"])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bad.csv"]


def test_fit_error_during_writing_leaves_existing_folder_untouched(tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("old")
    import inference.views

    def broken(*a, **k):
        raise ValueError("figure failed")

    monkeypatch.setattr(inference.views, "plot_clusters", broken)  # what `zoo fit` draws the clusters with
    code = main(["fit", "gmm", "--data", "faithful", "--steps", "5", "--restarts", "1", "--out", str(out),
                 "--no-progress"])
    assert code == 2
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_tour_from_the_command_line(tmp_path, capsys):
    """``zoo tour`` runs the tour's sections (one here; the whole quick tour is tested in test_tour.py)."""
    out = tmp_path / "tour"
    assert main(["tour", "--quick", "--no-progress", "--section", "bayes_vs_map_encoding", "--out", str(out)]) == 0
    names = {p.name for p in out.iterdir()}
    assert {"report.html", "report.md", "bayes_vs_map_encoding.png", "bayes_vs_map_1d.csv"} <= names
    html = (out / "report.html").read_text(encoding="utf-8")
    assert html.count('src="data:image/png;base64,') == 1
    assert "wrote" in capsys.readouterr().out
    assert main(["tour", "--list"]) == 0
    listed = capsys.readouterr().out
    for key in ["faithful_gmm", "kmeans_vs_em", "push_away", "bayes_vs_map_encoding"]:
        assert key in listed
    assert main(["tour", "--section", "nope", "--out", str(tmp_path / "x"), "--no-progress"]) == 2
    assert "unknown tour section(s) 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_fit_bayesian_gmm_by_cavi_from_the_command_line(tmp_path):
    """--K is the mixture's n_components (no deprecation warning); the cluster plot reads the
    conjugate model's precision site."""
    out = tmp_path / "b"
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*renamed.*", category=FutureWarning)
        code = main(["fit", "bayesian_gmm", "--data", "faithful", "--method", "cavi", "--K", "2", "--steps", "50",
                     "--num-samples", "10", "--out", str(out), "--no-progress"])
    assert code == 0
    assert {"summary.csv", "posterior.nc", "clusters.png"} <= {p.name for p in out.iterdir()}
    assert az.from_netcdf(str(out / "posterior.nc")).posterior["locs"].shape[-2:] == (2, 2)


def test_fit_glgae_from_the_command_line(tmp_path):
    out = tmp_path / "g"
    code = main(["fit", "glgae", "--data", "ring", "--method", "map", "--steps", "20", "--restarts", "1",
                 "-p", "K=4", "--out", str(out), "--no-progress"])
    assert code == 0
    assert {"summary.csv", "posterior.nc", "loss.png"} <= {p.name for p in out.iterdir()}


def test_new_run_replaces_the_old_one_whole(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "trace.png").write_bytes(b"old")
    assert main(["fit", "gmm", "--data", "faithful", "--steps", "5", "--restarts", "1", "--out", str(out),
                 "--no-progress"]) == 0
    assert "trace.png" not in {p.name for p in out.iterdir()}
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_non_finite_first_csv_row_is_data_not_a_header(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("inf,2\n1,3\n4,5\n6,7\n")
    assert main(["fit", "gmm", "--data", str(bad), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    assert "contains infinity" in capsys.readouterr().err


def test_out_that_is_a_file_is_refused(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["fit", "gmm", "--data", "faithful", "--out", str(f), "--no-progress"]) == 2
    assert "is not a folder" in capsys.readouterr().err
