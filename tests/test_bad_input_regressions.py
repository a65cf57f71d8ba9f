"""Every bad input that issue 16 found accepted silently, answered with an unclear (raw library)
message, or refused late: each is now refused at once with a ValueError/TypeError that names the
parameter and says what is wrong."""
from __future__ import annotations

import contextlib
import gzip
import io
import math
import time
import warnings

import numpy as np
import pytest
import torch

import inference
import zoo
from apps.cli import main as cli_main
from inference import views
from zoo import datasets

pytestmark = pytest.mark.usefixtures("one_thread")

X = np.random.default_rng(0).normal(size=(12, 2))
INF, NAN = float("inf"), float("nan")


def _fit(**kwargs):
    kwargs = {"method": "map", "num_steps": 5, "progress_bar": False, **kwargs}
    return inference.fit(zoo.create_model("gmm"), X, **kwargs)


def _nuts(**kwargs):
    return inference.fit(zoo.create_model("gmm"), X, method="nuts", num_samples=5, num_warmup=5, num_chains=1,
                         progress_bar=False, **kwargs)


# --- accepted silently ---------------------------------------------------------------------------
SILENT = [
    ("gmm concentration=inf", lambda: zoo.create_model("gmm", concentration=INF), ValueError,
     r"concentration must be a finite number, got inf"),
    ("gmm concentration='0.5'", lambda: zoo.create_model("gmm", concentration="0.5"), TypeError,
     r"concentration must be a real number > 0, got '0\.5' \(str\)"),
    ("gmm loc_loc=nan", lambda: zoo.create_model("gmm", loc_loc=NAN), ValueError, r"loc_loc must be a finite number, got nan"),
    ("gmm loc_scale=inf", lambda: zoo.create_model("gmm", loc_scale=INF), ValueError, r"loc_scale must be a finite number"),
    ("gmm scale_loc=inf", lambda: zoo.create_model("gmm", scale_loc=INF), ValueError, r"scale_loc must be a finite number"),
    ("blobs scale=inf", lambda: zoo.load_dataset("blobs", scale=INF), ValueError, r"scale must be a finite number, got inf"),
    ("ring radius=inf", lambda: zoo.load_dataset("ring", radius=INF), ValueError, r"radius must be a finite number, got inf"),
]


@pytest.mark.parametrize("call,error,match", [c[1:] for c in SILENT], ids=[c[0] for c in SILENT])
def test_accepted_silently_is_now_refused(call, error, match):
    with pytest.raises(error, match=match):
        call()


# --- unclear errors --------------------------------------------------------------------------------
UNCLEAR = [
    ("fit lr='0.1'", lambda: _fit(lr="0.1"), TypeError, r"lr must be a real number in \(0, 10\], got '0\.1' \(str\)"),
    ("fit tol='1e-3'", lambda: _fit(tol="1e-3"), TypeError, r"tol must be a real number >= 0 or None, got '1e-3'"),
    ("gmm concentration=[1, 2]", lambda: zoo.create_model("gmm", concentration=[1, 2]), TypeError,
     r"concentration must be a real number > 0, got \[1, 2\] \(list\)"),
    ("load_dataset(['faithful'])", lambda: zoo.load_dataset(["faithful"]), TypeError,
     r"dataset name must be a string, got \['faithful'\] \(list\); known datasets: .*faithful"),
    ("make_blobs separation=inf", lambda: datasets.make_blobs(separation=INF), ValueError,
     r"separation must be a finite number, got inf"),
    ("make_blobs separation=1e307", lambda: datasets.make_blobs(separation=1e307), ValueError,
     r"separation=1e\+307, scale=1: too large"),
    ("fit lr=inf", lambda: _fit(lr=INF), ValueError, r"lr must be positive and at most 10, got inf"),
    ("fit lr=1e6", lambda: _fit(lr=1e6), ValueError, r"lr must be positive and at most 10, got 1000000\.0"),
    ("fit guide_kwargs init_scale=-1", lambda: _fit(method="svi", guide_kwargs={"init_scale": -1}), ValueError,
     r"guide_kwargs\['init_scale'\] must be positive, got -1"),
    ("fit guide_kwargs unknown", lambda: _fit(method="svi", guide_kwargs={"init_scal": 0.1}), TypeError,
     r"guide 'normal' does not take the option\(s\) 'init_scal'; its options: .*init_scale"),
    ("fit betas=(2, 0.999)", lambda: _fit(betas=(2, 0.999)), ValueError,
     r"betas must be two numbers, each in \[0, 1\), got \(2, 0\.999\)"),
    ("fit seed=-1", lambda: _fit(seed=-1), ValueError, r"seed must be an integer in \[0, 2\*\*32\), got -1"),
    ("blobs random_state='abc'", lambda: zoo.load_dataset("blobs", random_state="abc"), TypeError,
     r"random_state must be an integer seed in \[0, 2\*\*32\).*got 'abc' \(str\)"),
    ("nuts_init with NaN", lambda: _nuts(nuts_init={"locs": torch.full((2, 2), NAN)}), ValueError,
     r"nuts_init must be .*; nuts_init\['locs'\] contains NaN"),
    ("nuts_init of a wrong shape", lambda: _nuts(nuts_init={"locs": torch.zeros(3)}), ValueError,
     r"nuts_init\['locs'\] has shape \(3,\); the site 'locs' has shape \(2, 2\)"),
    ("device='bogus' (GaussianMixture)", lambda: zoo.GaussianMixture(2, device="bogus").fit(X), ValueError,
     r"unknown device 'bogus'; use 'cpu', 'cuda' or 'cuda:N'"),
    ("device='bogus' (KMeans)", lambda: zoo.KMeans(2, device="bogus").fit(X), ValueError, r"unknown device 'bogus'"),
    ("device='bogus' (BayesianGaussianMixture)", lambda: zoo.BayesianGaussianMixture(n_components=2, device="bogus")
     .fit(X), ValueError, r"unknown device 'bogus'"),
    ("load_mnist_idx(None)", lambda: datasets.load_mnist_idx(None), TypeError,
     r"path must be the path of an existing IDX file \(str or os\.PathLike\), got None"),
]


@pytest.mark.parametrize("call,error,match", [c[1:] for c in UNCLEAR], ids=[c[0] for c in UNCLEAR])
def test_unclear_error_is_now_clear(call, error, match):
    start = time.perf_counter()
    with pytest.raises(error, match=match):
        call()
    assert time.perf_counter() - start < 5


CUDA_NAMES = ["cuda", "cuda:0"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal of device=\"cuda\" where torch has no CUDA; this machine has it")
@pytest.mark.parametrize("estimator", ["GaussianMixture", "BayesianGaussianMixture", "KMeans"])
@pytest.mark.parametrize("device", CUDA_NAMES)
def test_cuda_without_cuda_is_a_clear_error(estimator, device):
    est = getattr(zoo, estimator)(2, device=device) if estimator != "BayesianGaussianMixture" else \
        zoo.BayesianGaussianMixture(n_components=2, device=device)
    with pytest.raises(ValueError, match=rf"device '{device}' needs CUDA, which is not available here"):
        est.fit(X)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal of device=\"cuda\" where torch has no CUDA; this machine has it")
def test_cavi_on_cuda_without_cuda_is_a_clear_error():
    from inference.cavi import fit_cavi

    with pytest.raises(ValueError, match="device 'cuda' needs CUDA"):
        fit_cavi(zoo.create_model("bayesian_gmm"), X, device="cuda")


# checkpoints
@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "gmm.pt"
    _fit(checkpoint=path)
    return path


def _left(folder, *keep):
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


def test_checkpoint_that_is_a_folder(tmp_path):
    with pytest.raises(ValueError, match=r"checkpoint '.*' is a folder; give the path of a file inside it"):
        _fit(checkpoint=tmp_path)
    assert _left(tmp_path) == []


def test_checkpoint_in_a_missing_folder_is_made(tmp_path):
    """A missing parent folder is created (as before); one that cannot be made is a clear error."""
    path = tmp_path / "new" / "deeper" / "x.pt"
    _fit(checkpoint=path, resume=True)
    assert path.is_file()
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match=r"checkpoint '.*file/x\.pt': '.*file' is a file, so no folder can be made"):
        _fit(checkpoint=tmp_path / "file" / "x.pt")


@pytest.mark.parametrize("content", [b"", b"garbage" * 10, "TRUNCATED"], ids=["empty", "garbage", "truncated"])
def test_corrupt_or_truncated_checkpoint(saved, content):
    content = saved.read_bytes()[: len(saved.read_bytes()) // 2] if content == "TRUNCATED" else content
    bad = saved.parent / "bad.pt"
    bad.write_bytes(content)
    with pytest.raises(ValueError, match=r"checkpoint '.*bad\.pt' is corrupt or truncated, or not a checkpoint"):
        _fit(checkpoint=bad, resume=True)
    assert _left(saved.parent) == ["bad.pt", "gmm.pt"]


def test_checkpoint_of_another_model(saved):
    with pytest.raises(ValueError, match=r"checkpoint '.*gmm\.pt' was written for a guide of another shape.*"
                                         r"weights_unconstrained is \(2,\) in the checkpoint, \(3,\) here"):
        inference.fit(zoo.create_model("gmm", n_components=3), X, method="map", num_steps=5, progress_bar=False,
                      checkpoint=saved, resume=True)


def test_checkpoint_of_another_guide(saved):
    with pytest.raises(ValueError, match=r"checkpoint '.*gmm\.pt' was written for another guide: the guide's "
                                         r"parameters differ"):
        _fit(method="svi", checkpoint=saved, resume=True)


def test_checkpoint_of_another_method(tmp_path, saved):
    gan = zoo.create_model("gan")
    with pytest.raises(ValueError, match=r"checkpoint '.*gmm\.pt' lacks \['generator', 'discriminator'"):
        inference.fit(gan, torch.randn(16, 2), method="adversarial", num_steps=2, progress_bar=False,
                      checkpoint=saved, resume=True)


# views
def test_loo_compare_of_point_estimates():
    a, b = _fit(), _fit(seed=1)
    with pytest.raises(ValueError, match=r"results\['a'\] is a point estimate \(map/delta: one draw\); PSIS-LOO needs "
                                         r"posterior draws"):
        views.loo_compare({"a": a, "b": b})


# load_mnist_idx
def _gzip_with_corrupt_stream(payload: bytes) -> bytes:
    raw = bytearray(gzip.compress(payload))
    for i in range(10, len(raw) - 8):  # the deflate stream, header and trailer kept
        raw[i] ^= 0xFF
    return bytes(raw)


def test_load_mnist_idx_on_a_corrupt_gzip(tmp_path):
    path = tmp_path / "train.gz"
    path.write_bytes(_gzip_with_corrupt_stream(bytes([0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3]) * 20))
    with pytest.raises(ValueError, match=r"train\.gz: a corrupt gzip file"):
        datasets.load_mnist_idx(path)


def test_load_mnist_idx_on_a_header_whose_sizes_overflow(tmp_path):
    path = tmp_path / "huge.idx"
    path.write_bytes(bytes([0, 0, 8, 3]) + (2 ** 31).to_bytes(4, "big") * 3)
    with pytest.raises(ValueError, match=r"huge\.idx: the header declares shape \(2147483648, 2147483648, 2147483648\)"
                                         r" of uint8 \(9903520314283042199192993792 bytes\) but the file holds 0 bytes"):
        datasets.load_mnist_idx(path)


def test_load_mnist_idx_on_a_folder(tmp_path):
    with pytest.raises(ValueError, match=r"path '.*' is a folder, not a IDX file|path '.*' is a folder"):
        datasets.load_mnist_idx(tmp_path)


# the CLI
def _cli(argv):
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out), warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        try:
            code = cli_main(argv)
        except SystemExit as exc:
            code = exc.code
    return code, err.getvalue(), [str(x.message) for x in w]


@pytest.mark.parametrize("setup,match", [
    ("folder", r"--data '.*' is a folder; give a data set name \(zoo list\) or a CSV file"),
    ("empty", r"data file '.*empty\.csv' is empty"),
    ("one_line", r"data file '.*one\.csv' holds one line, read as a header \('a,b'\), and no rows of numbers"),
    ("blank_lines", r"data file '.*blank\.csv' is empty"),
    ("text", r"data file '.*text\.csv' is not a CSV file of numbers"),
    ("lr", r"--lr: lr must be positive and at most 10, got 1000000\.0"),
    ("steps", r"--steps: num_steps must be a positive integer, got 0"),
    ("model_arg_inf", r"concentration must be a finite number, got inf"),
    ("bad_int_flag", r"argument --seed: invalid int value: 'x' \(see zoo fit -h\)"),
])
def test_cli_errors_are_one_line_with_code_2(tmp_path, setup, match):
    files = {"folder": tmp_path / "d", "empty": tmp_path / "empty.csv", "one_line": tmp_path / "one.csv",
             "blank_lines": tmp_path / "blank.csv", "text": tmp_path / "text.csv"}
    files["folder"].mkdir()
    files["empty"].write_text("")
    files["one_line"].write_text("a,b\n")
    files["blank_lines"].write_text("\n\n  \n")
    files["text"].write_text("1,2\n3,x\n")
    data = str(files.get(setup, "faithful"))
    extra = {"lr": ["--lr", "1e6"], "steps": ["--steps", "0"], "model_arg_inf": ["-p", "concentration=inf"],
             "bad_int_flag": ["--seed", "x"]}.get(setup, [])
    out = tmp_path / "out"
    code, err, warned = _cli(["fit", "gmm", "--data", data, "--out", str(out), "--no-progress", *extra])
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert __import__("re").search(match, lines[0]), lines[0]
    assert warned == []  # no NumPy warning before the error
    assert not out.exists()
    assert not list(tmp_path.glob(".*staging*"))


# --- late errors ------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs,error,match", [
    (dict(fit_kwargs={"foo": 1}), TypeError, r"method 'svi' does not take the option\(s\) 'foo'"),
    (dict(fit_kwargs={"normal": {"foo": 1}}), TypeError, r"method 'svi' does not take the option\(s\) 'foo'"),
    (dict(fit_kwargs={"lr": 0.1}), TypeError, r"fit_kwargs repeats \['lr'\], which compare sets itself"),
    (dict(fit_kwargs={"guide_kwargs": {"init_scale": -1}}), ValueError, r"guide_kwargs\['init_scale'\] must be positive"),
    (dict(fit_kwargs={"restarts": 0}), ValueError, r"restarts must be a positive integer, got 0"),
    (dict(reference_kwargs={"num_steps": 10}), TypeError, r"method 'nuts' does not take the option\(s\) 'num_steps'"),
    (dict(reference_kwargs={"num_chains": 0}), ValueError, r"num_chains must be a positive integer, got 0"),
    (dict(reference="exact", reference_kwargs={"num_chains": 2}), TypeError, r"reference_kwargs are options of the NUTS"),
])
def test_compare_refuses_bad_options_before_the_reference_runs(monkeypatch, kwargs, error, match):
    import inference.nuts

    def no_nuts(*args, **kw):  # pragma: no cover - reached only if the refusal came late
        raise AssertionError("the NUTS reference ran before the options were checked")

    monkeypatch.setattr(inference.nuts, "MCMC", no_nuts)
    start = time.perf_counter()
    with pytest.raises(error, match=match):
        inference.compare(zoo.create_model("normal_normal"), X, guides=["normal"], num_steps=5, num_samples=10,
                          progress_bar=False, **kwargs)
    assert time.perf_counter() - start < 1.0


def test_valid_inputs_still_work():
    """What the declarations accept: NumPy scalars, 0-d tensors, the deprecated names, None where allowed."""
    m = zoo.create_model("gmm", concentration=np.float32(0.5), loc_loc=torch.tensor(0.0), loc_scale=np.int64(3))
    assert math.isclose(float(m.concentration), 0.5)
    with pytest.warns(FutureWarning):
        assert zoo.create_model("gmm", K=3).n_components == 3
    assert zoo.load_dataset("blobs", random_state=np.random.default_rng(1), n_samples=10).data.shape == (10, 2)
    r = _fit(tol=None, lr=np.float64(0.1), seed=np.int64(3), betas=[0.8, 0.9])
    assert r.samples["locs"].shape[-2:] == (2, 2)
    assert zoo.GaussianMixture(2, device="cpu").fit(X).converged_ in (True, False)
