"""Issue 16, items 3 and 4: divergent SVI runs end in a FloatingPointError that says so; MAP stops when its
loss is flat; a short repr for results; progress bars that behave in logs; output folders with the
user's usual permissions and stale staging folders cleaned up; ``zoo list`` never cuts a description."""
import os
import stat
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch

import inference
import zoo
import zoo.progress
from apps.cli import _summary, main
from inference.svi import DIVERGENCE_FACTOR, MAP_PATIENCE, MAP_TOL
from zoo import registry

pytestmark = pytest.mark.usefixtures("one_thread")


def _blobs(n=60, seed=None):
    kw = {} if seed is None else {"random_state": seed}
    return torch.tensor(zoo.load_dataset("blobs", n_samples=n, **kw).data)


# --- item 3: divergence --------------------------------------------------------------------------------
@pytest.mark.parametrize("method,steps", [("map", 1000), ("svi", 100)])
def test_a_run_whose_loss_grew_by_orders_of_magnitude_raises(method, steps):
    # fit(..., lr=10) on the gmm used to return a "fitted" result whose loss ended at 6581
    message = r"diverged: the loss grew to .* \(it started at .*smaller lr \(now 10\)"
    with pytest.raises(FloatingPointError, match=message):
        inference.fit(zoo.create_model("gmm", n_components=2), _blobs(), method=method, lr=10, num_steps=steps,
                      progress_bar=False)


def test_parameters_that_became_nan_raise_a_floating_point_error_not_a_distribution_error():
    # at step 238 the weights are NaN and Pyro's Categorical refuses them with a ValueError
    with pytest.raises(FloatingPointError, match="parameters became NaN or infinite by step .*smaller lr") as info:
        inference.fit(zoo.create_model("gmm", n_components=2), _blobs(), method="map", lr=10, tol=None,
                      num_steps=300, progress_bar=False)
    assert isinstance(info.value.__cause__, ValueError)


def test_a_nan_loss_says_the_fit_diverged():
    import pyro
    import pyro.distributions as dist

    def model(data):
        mu = pyro.sample("mu", dist.Normal(0.0, 1.0))
        pyro.factor("bad", torch.sqrt(5.0 - mu))  # NaN beyond mu = 5, where the data pull it
        with pyro.plate("data", len(data)):
            pyro.sample("obs", dist.Normal(mu, 1.0), obs=data)

    with pyro.validation_enabled(False):  # with it, Pyro refuses the NaN factor itself, naming it
        with pytest.raises(FloatingPointError, match=r"diverged: the loss became nan at step \d+ \(it started at "
                                                     r".*smaller lr"):
            inference.fit(model, torch.full((5,), 10.0), method="map", lr=0.5, num_steps=200, progress_bar=False)


def test_a_loss_that_ends_below_the_divergence_threshold_is_a_result():
    assert DIVERGENCE_FACTOR == 10.0
    r = inference.fit(zoo.create_model("gmm", n_components=2), _blobs(), method="svi", lr=0.05, num_steps=50,
                      progress_bar=False)
    assert r.losses[-1] < r.losses[0]


# --- item 3: MAP's stopping rule -----------------------------------------------------------------------
def test_map_stops_by_default_once_its_loss_is_flat_and_says_so():
    assert (MAP_TOL, MAP_PATIENCE) == (1e-6, 50)
    assert inference.method_spec("map").options["tol"] == MAP_TOL
    assert inference.method_spec("map").options["patience"] == MAP_PATIENCE
    assert inference.method_spec("svi").options["tol"] is None  # SVI's loss is noisy: every step by default
    data = _blobs(40, seed=2)
    flat = inference.fit(zoo.create_model("gmm", n_components=2), data, method="map", num_steps=600,
                         progress_bar=False)
    full = inference.fit(zoo.create_model("gmm", n_components=2), data, method="map", num_steps=600, tol=None,
                         progress_bar=False)
    assert flat.converged and len(flat.losses) < 300 and "(converged)" in repr(flat)
    assert not full.converged and len(full.losses) == 600
    assert flat.losses == full.losses[:len(flat.losses)]  # the same run, stopped
    assert flat.losses[-1] - min(full.losses) < 1e-4 * abs(full.losses[-1])
    for name, value in flat.posterior_mean().items():
        torch.testing.assert_close(value, full.posterior_mean()[name], atol=5e-3, rtol=0)


# --- item 4: repr -----------------------------------------------------------------------------------------
def test_a_fit_result_prints_as_one_short_line():
    r = inference.fit(zoo.create_model("gmm", n_components=2), _blobs(), method="map", num_steps=30,
                      progress_bar=False)
    text = repr(r)
    assert text == str(r) and "\n" not in text and len(text) < 200
    assert "tensor(" not in text and str(round(r.losses[3], 2)) not in text
    for part in ["model=GaussianMixtureModel", "method='map'", "guide='delta'", "steps=30",
                 f"final_loss={r.losses[-1]:.6g}", "draws=1x1", "run_time="]:
        assert part in text, part


# --- item 4: progress bars in logs ----------------------------------------------------------------------
def _loops():
    data = _blobs(30, seed=1)
    ring = torch.tensor(zoo.load_dataset("ring", n_samples=24).data)
    return {
        "svi": lambda: inference.fit(zoo.create_model("gmm", n_components=2), data, num_steps=5),
        "em": lambda: inference.fit(zoo.create_model("gmm", n_components=2), data, method="em", num_steps=3),
        "nuts": lambda: inference.fit(zoo.create_model("gmm", n_components=2), data[:10], method="nuts",
                                      num_samples=3, num_warmup=3, num_chains=1, jit_compile=False,
                                      nuts_init="prior", max_tree_depth=2),
        "adversarial": lambda: inference.fit(zoo.create_model("gan", n_features=2, hidden=(8,)), data,
                                             method="adversarial", num_steps=3, batch_size=8, num_samples=4),
        "coordinate": lambda: inference.fit(zoo.create_model("glgae", K=3, D=2, E=2), ring, method="coordinate",
                                            num_steps=2),
        "compare": lambda: inference.compare("normal_normal", data, guides=["normal"], reference="exact",
                                             num_steps=3, num_samples=4),
        "estimator": lambda: zoo.GaussianMixture(2, max_iter=3, progress_bar=True).fit(data),
    }


LOOPS = list(_loops())


@pytest.mark.parametrize("loop", LOOPS)
def test_progress_in_a_log_is_plain_lines_never_carriage_returns(loop, capsys, monkeypatch):
    import zoo.conjugate  # noqa: F401

    run = _loops()[loop]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run()  # captured stderr is not a terminal; a quick loop stays under LOG_INTERVAL: nothing written
        assert capsys.readouterr().err == ""
        monkeypatch.setattr(zoo.progress, "LOG_INTERVAL", 0.0)  # a line at every update
        run()
    err = capsys.readouterr().err
    assert "\r" not in err and err.endswith("\n") and len(err.splitlines()) >= 3, err


def test_progress_lines_come_every_log_interval_seconds(monkeypatch):
    class Log:
        def __init__(self):
            self.text = ""

        def write(self, s):
            self.text += s

        def flush(self):
            pass

        def isatty(self):
            return False

    monkeypatch.setattr(zoo.progress, "LOG_INTERVAL", 0.05)
    log = Log()
    with zoo.progress.progress(total=40, desc="steps", file=log) as bar:
        for i in range(40):
            time.sleep(0.01)
            bar.update(1)
            bar.set_postfix(loss=i)  # refreshes on a terminal at every call: here only at the interval
    lines = log.text.splitlines()
    assert "\r" not in log.text and 3 <= len(lines) <= 12, lines
    assert lines[-1].startswith("steps: 100%|")
    assert zoo.progress.log_mode(log) and not zoo.progress.log_mode(type("T", (Log,), {"isatty": lambda s: True})())


def test_progress_on_a_terminal_is_tqdms_bar(monkeypatch, capsys):
    monkeypatch.setattr(zoo.progress, "log_mode", lambda file=None: False)
    inference.fit(zoo.create_model("gmm", n_components=2), _blobs(30, seed=1), num_steps=5)
    assert "\r" in capsys.readouterr().err


# --- item 4: output folders --------------------------------------------------------------------------
def _mode(path):
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_zoo_fit_output_has_the_users_usual_permissions_and_stale_staging_is_removed(tmp_path, capsys, umask_022):
    out = tmp_path / "run"
    dead = _dead_pid()
    stale = [tmp_path / f".run.staging-{dead}-0a1b2c3d", tmp_path / f".run.old-{dead}-0a1b2c3d",
             tmp_path / ".run.staging-k3j_x9qz"]  # the last: an older version's name, without a process id
    live = tmp_path / f".run.staging-{os.getppid()}-0a1b2c3d"  # a concurrent run: left alone
    other = tmp_path / f".runs.staging-{dead}-0a1b2c3d"  # another output's
    for p in stale + [live, other]:
        p.mkdir()
        (p / "partial.csv").write_text("1\n")
    code = main(["fit", "gmm", "--data", "faithful", "--method", "map", "--K", "2", "--steps", "20",
                 "--restarts", "1", "--out", str(out), "--no-progress"])
    assert code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, other.name, "run"])
    assert _mode(out) == 0o755  # not mkdtemp's 0700
    for f in out.iterdir():
        assert _mode(f) == 0o644, f.name


def test_checkpoint_files_have_the_users_usual_permissions(tmp_path, umask_022):
    path = inference.atomic_save({"a": torch.ones(1)}, tmp_path / "ck.pt")
    assert _mode(path) == 0o644  # not mkstemp's 0600
    os.umask(0o077)
    assert _mode(inference.atomic_save({"a": torch.ones(1)}, tmp_path / "private.pt")) == 0o600


def test_a_staging_folder_left_by_a_killed_run_is_removed_by_the_next_run(tmp_path):
    # a run killed while writing (SIGKILL: no cleanup) leaves its staging folder; the next run removes it
    script = ("import sys, time, inference\n"
              "with inference.staged_output(sys.argv[1]) as stage:\n"
              "    (stage / 'half.txt').write_text('x')\n"
              "    print(stage, flush=True)\n"
              "    time.sleep(60)\n")
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "out")], stdout=subprocess.PIPE, env=env,
                            text=True)
    stage = proc.stdout.readline().strip()
    assert os.path.isdir(stage) and ".out.staging-" in stage
    with inference.staged_output(tmp_path / "out") as mine:  # the writer is alive: its folder stays
        assert os.path.isdir(stage)
    proc.kill()
    proc.wait()
    proc.stdout.close()
    with inference.staged_output(tmp_path / "out") as mine:
        assert not os.path.exists(stage) and mine.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


# --- item 4: zoo list ---------------------------------------------------------------------------------
def test_zoo_list_never_cuts_a_description_mid_sentence(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in registry.list_models():
        summary = _summary(registry._MODELS[name].__doc__)
        assert summary.endswith("."), name
        line = next(line for line in out.splitlines() if line.split()[:1] == [name])
        assert line.endswith(summary), name
    assert "CAVI via ``inference.cavi.fit_cavi``." in out  # bayesian_gmm's, cut after "Gauss-Wishart" before


def test_summary_is_the_first_paragraph_on_one_line():
    assert _summary("One sentence\n    over two lines.\n\n    Details.") == "One sentence over two lines."
    assert _summary(None) == "" and _summary("") == ""
