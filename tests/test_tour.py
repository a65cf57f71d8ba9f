"""The tour (``make run`` / ``zoo tour``): a self-contained HTML report whose figures are embedded PNGs and
whose tables hold finite numbers, written whole or not at all; sections are one function each."""
import base64
import io
import math
import re
from html.parser import HTMLParser

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
import torch

from apps.tour import SECTION_MODULES, SECTIONS, Section, Table, list_sections, run_tour, tour_section

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class _ReportParser(HTMLParser):
    """Collects <img> sources, <section> ids and the text of every table cell (per table)."""

    def __init__(self):
        super().__init__()
        self.images, self.sections, self.tables = [], [], []
        self._cell = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        elif tag == "section":
            self.sections.append(attrs.get("id"))
        elif tag == "table":
            self.tables.append([])
        elif tag == "td":
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.tables[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _png_size(data: bytes):
    assert data[:8] == PNG_MAGIC
    assert data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("tour") / "run"
    run_tour(out, quick=True, progress_bar=False, seed=0)
    parser = _ReportParser()
    parser.feed((out / "report.html").read_text(encoding="utf-8"))
    return out, parser


def test_report_has_every_section(report):
    out, parser = report
    assert parser.sections == list(SECTIONS)
    assert {"faithful_gmm", "kmeans_vs_em", "push_away", "bayes_vs_map_encoding", "swapping_guides",
            "variational_em", "vae_estimators"} <= set(SECTIONS)
    assert (out / "report.md").exists() and (out / "posterior_nuts.nc").exists()
    assert not list(out.parent.glob(".*staging*"))


def test_every_image_is_an_embedded_png_that_matches_its_file(report):
    out, parser = report
    files = sorted(out.glob("*.png"))
    assert len(parser.images) == len(files) >= 6
    embedded = []
    for src in parser.images:
        assert src.startswith("data:image/png;base64,"), src[:40]
        data = base64.b64decode(src.split(",", 1)[1], validate=True)
        w, h = _png_size(data)
        assert w > 100 and h > 100
        pixels = mpimg.imread(io.BytesIO(data), format="png")  # decodes the whole image
        assert pixels.shape[:2] == (h, w)
        assert pixels[..., :3].std() > 0.01  # not a blank canvas
        embedded.append(data)
    assert sorted(embedded) == sorted(f.read_bytes() for f in files)


def test_tables_hold_finite_numbers(report):
    out, parser = report
    assert len(parser.tables) >= 6
    number = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")
    for cells in parser.tables:
        assert not any(c.lower() in {"nan", "inf", "-inf"} for c in cells), cells
        values = [float(c) for c in cells if number.match(c)]
        assert values and all(math.isfinite(v) for v in values)
    csvs = sorted(p.name for p in out.glob("*.csv"))
    assert len(csvs) == len(parser.tables)


def test_kmeans_vs_em_table(report):
    out, _ = report
    t = pd.read_csv(out / "kmeans_vs_em.csv", index_col=0)
    em = t[(t.index == "tempered EM") & (t["T"] == 1.0)].iloc[0]
    sk = t.loc["scikit-learn EM"]
    assert abs(em["loglik_per_datum"] - sk["loglik_per_datum"]) < 1e-4  # the same optimum as scikit-learn
    hard = t.loc["hard EM"]
    assert hard["loglik_per_datum"] < em["loglik_per_datum"]  # EM maximises the likelihood, hard EM does not
    entropy = t[t.index != "scikit-learn EM"].sort_values("T")["mean_entropy"].to_numpy()
    assert np.all(np.diff(entropy[1:]) > 0)  # responsibilities flatten as T rises
    assert hard["uncertain_frac"] > 0  # what the hard assignment hides


def test_swapping_guides_table(report):
    out, _ = report
    t = pd.read_csv(out / "swapping_guides.csv", index_col=0)
    assert t.loc["mvn", "rank"] < t.loc["normal", "rank"]  # the full-rank guide holds the correlation
    assert t.loc["normal", "sd_error[mu]"] > 0.5  # mean field is too narrow by about sqrt(1 - rho^2)
    assert t.loc["delta", "sd_error[mu]"] == pytest.approx(1.0)
    assert np.isfinite(t.loc["exact", "log_evidence"])


def test_variational_em_tables(report):
    out, _ = report
    parity = pd.read_csv(out / "variational_em_parity.csv", index_col=0)
    assert (parity["max_rel_gap_per_iter"] < 1e-6).all()  # the same bound as scikit-learn every iteration
    assert (parity["iterations"] == parity["sklearn_iterations"]).all()
    versus = pd.read_csv(out / "variational_em_svi.csv", index_col=0)
    assert versus.loc["CAVI", "mean_field_elbo"] > versus.loc["SVI (normal guide)", "mean_field_elbo"]


def test_vae_estimator_tables(report):
    out, _ = report
    var = pd.read_csv(out / "vae_variance.csv", index_col=0)["mean_variance"]
    assert var["score_function"] > 10 * var["reparam"] and var["analytic_kl"] <= var["reparam"]
    assert var["score_function, no baseline"] > var["reparam"]
    bounds = pd.read_csv(out / "vae_bounds.csv", index_col=0)
    assert np.isfinite(bounds.to_numpy()).all() and (bounds.to_numpy() < 0).all()


def test_push_away_table(report):
    out, _ = report
    t = pd.read_csv(out / "push_away.csv", index_col=0)
    free, pen = t.loc["no absorbing (b = 0)"], t.loc["b = 0, penalty -||z||^2 on every logit"]
    assert free["|z| L-BFGS"] > 100
    np.testing.assert_allclose(pen.to_numpy(), free.to_numpy(), rtol=1e-9)  # the penalty cancels
    for label in ["absorbing b = 0.5", "absorbing b = 3", "absorbing exp(||z||^2)"]:
        assert t.loc[label, "|z| L-BFGS"] < 1 and t.loc[label, "grad L2 at end"] < 1e-6
    w = pd.read_csv(out / "push_away_worked_example.csv", index_col=0)
    assert np.allclose(w["measured"], w["notes"], atol=1e-4)
    ring = pd.read_csv(out / "push_away_ring.csv", index_col=0)
    assert ring.loc["b = 0", "median |z|"] > 3 * ring.loc["b = 0", "max |B_k|"]
    assert ring.loc["b = 1", "max |z|"] < 2 * ring.loc["b = 1", "max |B_k|"]


def test_mode_collapse_tables(report):
    out, _ = report
    t = pd.read_csv(out / "mode_collapse.csv", index_col=0).set_index(["data", "model"])
    assert list(t.index.get_level_values(0).unique()) == ["ring of 8", "grid of 25"]
    assert (t["runs"] == 3).all()  # several seeds: GANs vary from run to run
    assert ((t["modes (mean)"] >= 0) & (t["modes (mean)"] <= t["modes of"])).all()
    assert t["high-quality fraction (mean)"].between(0, 1).all()
    held_out = t["held-out log-lik (mean)"]
    assert (held_out[[m.startswith("GAN") for m in t.index.get_level_values(1)]] == "none").all()
    likelihood = held_out[[not m.startswith("GAN") for m in t.index.get_level_values(1)]].astype(float)
    assert np.isfinite(likelihood).all()
    # even at the test's sizes the mixture finds every mode of the ring
    assert t.loc[("ring of 8", "Gaussian mixture"), "modes (mean)"] >= 7
    runs = pd.read_csv(out / "mode_collapse_runs.csv", index_col=0)
    assert len(runs) == 2 * 5 * 3


def test_bayes_vs_map_table_against_quadrature(report):
    """The grid posterior's moments are checked against scipy's adaptive quadrature of exp L2."""
    from scipy.integrate import quad

    out, _ = report
    t = pd.read_csv(out / "bayes_vs_map_1d.csv", index_col=0)
    from zoo.glgae import GLGAE

    m = GLGAE(2, 1, 1, absorbing="constant", b=1.0)
    with torch.no_grad():
        m.A.data = torch.tensor([[-1.5], [1.5]], dtype=torch.float64)
        m.B.data = torch.tensor([[-2.0], [2.0]], dtype=torch.float64)
    for x, row in t.iterrows():
        def dens(z, power):
            val = m.L2(torch.tensor([[z]], dtype=torch.float64), torch.tensor([[x]], dtype=torch.float64)).item()
            return z**power * math.exp(val)

        Z = quad(dens, -30, 30, args=(0,), points=[-2, 2], limit=200)[0]
        mean = quad(dens, -30, 30, args=(1,), points=[-2, 2], limit=200)[0] / Z
        second = quad(dens, -30, 30, args=(2,), points=[-2, 2], limit=200)[0] / Z
        assert abs(row["posterior mean"] - mean) < 1e-3
        assert abs(row["posterior sd"] - math.sqrt(second - mean**2)) < 1e-3
    # MAP hides the uncertainty at the boundary: the posterior is widest there, the MAP code at an anchor
    assert t["posterior sd"].idxmax() == pytest.approx(0.0, abs=1e-9)
    assert abs(t.loc[t.index.min(), "MAP z"] + 2) < 0.05 and abs(abs(t.loc[0.0, "MAP z"]) - 2) < 0.05
    assert abs(t.loc[0.0, "P(z > 0 | x)"] - 0.5) < 1e-3
    ring = pd.read_csv(out / "bayes_vs_map_ring.csv", index_col=0)
    sd = ring["posterior sd (sqrt trace cov)"]
    assert sd["between two clusters"] > sd["on a cluster"] and sd["at the centre"] > sd["on a cluster"]
    near = ring["P(||z - MAP z|| < 1 | x)"]
    assert near["on a cluster"] > 0.5 > near["between two clusters"]


# --- the machinery: extension, failure, validation ------------------------------------------------
def test_one_section_per_module_in_the_tour_order():
    """Every module of ``apps/tour/`` but ``__init__`` registers exactly one section, under its own name, and
    the tour runs them in the order of ``SECTION_MODULES``."""
    from pathlib import Path

    import apps.tour

    modules = sorted(p.stem for p in Path(apps.tour.__file__).parent.glob("*.py") if p.stem != "__init__")
    assert modules and sorted(SECTION_MODULES) == modules
    owners = [SECTIONS[key].__module__ for key in list_sections()]
    for name in modules:
        assert owners.count(f"apps.tour.{name}") == 1, f"apps/tour/{name}.py must register exactly one section"
    assert owners == [f"apps.tour.{name}" for name in SECTION_MODULES]
    assert list_sections() == list(SECTION_MODULES)


@pytest.fixture
def extra_section():
    added = []

    def add(key, fn):
        tour_section(key)(fn)
        added.append(key)

    yield add
    for key in added:
        SECTIONS.pop(key, None)


def _tiny(ctx):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [1, 0])
    return Section("Tiny", ["A `code` paragraph <escaped>."], [Table("numbers", pd.DataFrame({"a": [1.5, 2.0]}))],
                   [ctx.figure(fig, "tiny.png", "a line")])


def test_a_new_section_is_one_function(tmp_path, extra_section):
    extra_section("tiny", _tiny)
    out = run_tour(tmp_path / "t", quick=True, progress_bar=False, sections=["tiny"])
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "<code>code</code> paragraph &lt;escaped&gt;" in html
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "report.md", "tiny.png", "tiny_0.csv"]
    with pytest.raises(ValueError, match="already registered"):
        tour_section("tiny")(_tiny)


def test_a_failing_section_leaves_nothing(tmp_path, extra_section):
    def broken(ctx):
        _tiny(ctx)
        raise RuntimeError("section failed")

    extra_section("broken", broken)
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("old")
    threads = torch.get_num_threads()
    with pytest.raises(RuntimeError, match="section failed"):
        run_tour(out, progress_bar=False, sections=["broken"])
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["run"]
    assert torch.get_num_threads() == threads  # restored after the tour's single-threaded run


def test_bad_arguments(tmp_path, extra_section):
    with pytest.raises(ValueError, match="unknown tour section.*'nope'.*known: faithful_gmm"):
        run_tour(tmp_path / "x", progress_bar=False, sections=["nope"])
    with pytest.raises(ValueError, match="no tour sections selected"):
        run_tour(tmp_path / "x", progress_bar=False, sections=[])
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is not a folder"):
        run_tour(tmp_path / "file", progress_bar=False, sections=["kmeans_vs_em"])
    with pytest.raises(ValueError, match="identifier"):
        tour_section("not a key")
    with pytest.raises(TypeError, match="must be a function"):
        tour_section("not_callable")(3)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        run_tour(tmp_path / "x", progress_bar=False, seed=-1, sections=["kmeans_vs_em"])
    extra_section("wrong", lambda ctx: "text")
    with pytest.raises(TypeError, match="returned str, not a Section"):
        run_tour(tmp_path / "y", progress_bar=False, sections=["wrong"])
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
