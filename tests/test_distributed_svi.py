"""Data-parallel SVI (``inference.distributed_svi``): two gloo processes on the loopback address
against one process fitting the union of their shards with the same global batch.

One spawn of the two ranks runs every case (``dp_svi_jobs.run_all``); the tests read its results.
"""
import pytest
import torch

import dp_svi_jobs as jobs
from distributed_harness import run_ranks

pytestmark = pytest.mark.usefixtures("one_thread")

CASES = {name: (sizes, dtype, options) for name, sizes, dtype, options in jobs.CASES}
#: float64 runs agree to rounding; float32 rounds each rank's partial sums before they are added, and
#: those differences (1e-7 relative) grow a little over the steps
RTOL = {torch.float64: 1e-6, torch.float32: 1e-5}


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dp_svi")
    return run_ranks("dp_svi_jobs:run_all", 2, tmp, tmp=str(tmp))


@pytest.fixture(scope="module")
def one_process():
    return {name: jobs.fit_case(jobs.make_data(sum(sizes), dtype), **options)
            for name, (sizes, dtype, options) in CASES.items()}


def _max_rel(a, b) -> float:
    return ((a - b).abs() / b.abs()).max().item()


@pytest.mark.parametrize("name", list(CASES))
def test_loss_trace_is_the_one_process_trace(ranks, one_process, name):
    """The same global minibatches and noise: the ranks' summed losses are one process's losses."""
    sizes, dtype, options = CASES[name]
    ref = one_process[name]["losses"]
    for r in range(2):
        got = ranks[r][name]["losses"]
        assert got.shape == ref.shape
        assert _max_rel(got, ref) < RTOL[dtype], name


@pytest.mark.parametrize("name", list(CASES))
def test_parameters_bitwise_identical_on_the_ranks(ranks, name):
    a, b = ranks[0][name], ranks[1][name]
    assert torch.equal(a["losses"], b["losses"])
    assert a["params"].keys() == b["params"].keys()
    for key in a["params"]:
        assert torch.equal(a["params"][key], b["params"][key]), key


@pytest.mark.parametrize("name", ["even", "uneven", "tiny_shard", "autoencoder"])
def test_trained_networks_are_the_one_process_networks(ranks, one_process, name):
    ref = one_process[name]["params"]
    for key, value in ranks[0][name]["params"].items():
        if key == "log_scale":  # the Bernoulli VAE does not use it; it starts from rank 0's shard
            continue
        torch.testing.assert_close(value, ref[key], rtol=1e-9, atol=1e-12)


def test_posterior_draws_are_of_each_ranks_rows(ranks):
    sizes = CASES["uneven"][0]
    for r in range(2):
        z = ranks[r]["uneven"]["samples"]["z"]
        assert z.shape == (1, 2, sizes[r], 3) and bool(torch.isfinite(z).all())


def test_checkpoint_is_rank0s_and_resumes_exactly(ranks, one_process):
    ref = one_process["uneven"]["losses"]
    ck0, ck1 = ranks[0]["checkpoints"], ranks[1]["checkpoints"]
    assert ck0["exists"] and not ck1["exists"]  # rank 1 wrote nothing, and resumed from rank 0's state
    for ck in (ck0, ck1):
        assert _max_rel(ck["first"], ref[:12]) < 1e-6
        assert _max_rel(ck["resumed"], ref) < 1e-6


def test_two_rank_checkpoint_resumes_in_one_process(ranks, one_process, tmp_path):
    """The checkpoint holds what one process would hold at that step, so one process can continue it."""
    import shutil

    path = tmp_path / "resume.pt"
    shutil.copy(ranks[0]["checkpoints"]["at_stop"], path)
    sizes = CASES["uneven"][0]
    got = jobs.fit_case(jobs.make_data(sum(sizes)), batch_size=100, checkpoint=path, resume=True)
    assert _max_rel(got["losses"], one_process["uneven"]["losses"]) < 1e-6


@pytest.mark.parametrize("case,kind,words", [
    ("no_minibatch", "ValueError", "does not subsample a data plate"),
    ("score_function", "ValueError", "supports_data_parallel is False"),
    ("denoising", "ValueError", "supports_data_parallel is False"),
    ("jit_loss", "ValueError", "jit_loss=False"),
    ("outside_plate", "ValueError", "site 'sparsity' lies outside it"),
    ("own_noise", "RuntimeError", "random generators drifted apart"),
])
def test_refusals_are_clear_and_on_every_rank(ranks, case, kind, words):
    for r in range(2):
        refused = ranks[r]["refusals"][case]
        assert refused is not None, f"rank {r} ran {case}"
        assert refused[0] == kind and words in refused[1], refused
