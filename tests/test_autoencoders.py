import math

import pytest
import torch

import zoo  # noqa: F401  (project Pyro settings)
import inference
from zoo.autoencoders import Autoencoder, StackedAutoencoder, sparsity_penalty


def _digits(n):
    return torch.tensor(zoo.load_dataset("binary_digits").data[:n])


def test_sparsity_penalty_matches_hand_computation():
    rho_hat = torch.tensor([[0.1, 0.5, 0.9], [0.05, 0.2, 0.7]], dtype=torch.float64)
    rho = 0.05
    expected = [sum(rho * math.log(rho / r) + (1 - rho) * math.log((1 - rho) / (1 - r)) for r in row)
                for row in rho_hat.tolist()]
    assert torch.allclose(sparsity_penalty(rho_hat, rho), torch.tensor(expected, dtype=torch.float64))
    assert sparsity_penalty(torch.full((4,), rho), rho).abs().item() < 1e-12  # zero at the target
    with pytest.raises(ValueError, match="rho"):
        sparsity_penalty(rho_hat, 1.5)


def test_denoising_zeroes_the_stated_fraction():
    ae = Autoencoder(50, 4, 8, kind="denoising", noise=0.3)
    x = torch.ones(400, 50)
    frac = (ae.corrupt(x) == 0).float().mean().item()
    assert abs(frac - 0.3) < 0.01  # 20,000 Bernoulli(0.3) draws: sd 0.003
    assert torch.equal(Autoencoder(50, 4, 8).corrupt(x), x)


@pytest.mark.parametrize("kind", ["deterministic", "denoising", "sparse"])
def test_autoencoder_beats_the_data_mean(kind):
    x = _digits(300)
    ae = Autoencoder(64, 8, (32,), kind=kind, beta=0.5)
    res = inference.fit(ae, x, guide="custom", num_steps=300, lr=1e-2, batch_size=150, progress_bar=False)
    assert res.losses[-1] < res.losses[0]
    p = x.mean(0).clamp(1e-3, 1 - 1e-3)
    mean_baseline = -(x * p.log() + (1 - x) * (1 - p).log()).sum(-1).mean().item()
    assert ae.reconstruction_error(x).mean().item() < mean_baseline - 1.0
    assert res.samples["code"].shape == (1, 1, 300, 8)


def test_sparse_penalty_lowers_mean_activation():
    x = _digits(300)
    means = {}
    for beta in (0.0, 5.0):  # sigmoid codes both times; the penalty alone differs
        kind = "sparse" if beta else "deterministic"
        ae = Autoencoder(64, 8, (32,), kind="sparse", rho=0.05, beta=beta)
        inference.fit(ae, x, guide="custom", num_steps=100, lr=1e-2, progress_bar=False, seed=0)
        means[kind] = ae.encode(x).mean().item()
    assert means["sparse"] < 0.75 * means["deterministic"], means


def test_gaussian_autoencoder_and_bad_input():
    ae = Autoencoder(64, 4, 8)
    with pytest.raises(ValueError, match="binary"):
        ae.reconstruction_error(torch.rand(5, 64))
    with pytest.raises(ValueError, match="unknown kind"):
        Autoencoder(64, kind="stacked")
    with pytest.raises(ValueError, match="noise"):
        Autoencoder(64, kind="denoising", noise=1.0)
    g = Autoencoder(64, 4, 8, likelihood="gaussian")
    x = torch.rand(20, 64)
    assert torch.allclose(g.reconstruction_error(x), (x - g.decoder(g.encode(x))).pow(2).sum(-1).detach())


# --- the stacked autoencoder ------------------------------------------------------------------------
def test_assembled_stack_computes_what_its_stages_compute():
    """After assemble(): the deep encoder is the stages' encoders one after the other, and the deep decoder
    their decoders in reverse, each stage's output logits passed through the sigmoid units of the stack."""
    torch.manual_seed(0)
    stack = StackedAutoencoder(64, (32, 8, 3)).double()
    for m in stack.modules():  # random weights everywhere, different in the stages and the stack
        if isinstance(m, torch.nn.Linear):
            m.reset_parameters()
    stack.assemble()
    x = _digits(20).double()
    code = x
    for stage in stack.stages:
        code = stage.encoder(code)
    torch.testing.assert_close(stack.encoder(x), code, rtol=0, atol=1e-12)
    out = code
    for i, stage in enumerate(reversed(stack.stages)):
        out = stage.decoder(out)
        if i < len(stack.stages) - 1:
            out = torch.sigmoid(out)
    torch.testing.assert_close(stack.decoder(code), out, rtol=0, atol=1e-12)


def test_layerwise_pretraining_then_finetuning():
    """method="layerwise": each stage's loss falls on its own input (the data, then the codes below);
    fine-tuning starts from the assembled stack (its first loss is the assembled stack's) and lowers it;
    the result reconstructs better than the data mean."""
    x = _digits(300)
    stack = zoo.create_model("stacked_autoencoder", n_features=64, layer_sizes=(32, 8))
    r = inference.fit(stack, x, method="layerwise", num_steps=300, finetune_steps=300, lr=1e-2, batch_size=150,
                      seed=0, progress_bar=False)
    assert len(r.stage_losses) == 2 and all(len(t) == 300 for t in r.stage_losses)
    for trace in r.stage_losses:
        assert sum(trace[-20:]) < sum(trace[:20])
    tune = r.losses[600:]
    assert len(tune) == 300 and sum(tune[-20:]) < sum(tune[:20])
    p = x.mean(0).clamp(1e-3, 1 - 1e-3)
    mean_baseline = -(x * p.log() + (1 - x) * (1 - p).log()).sum(-1).mean().item()
    assert stack.reconstruction_error(x).mean().item() < mean_baseline - 1.0
    assert r.method == "layerwise" and r.samples["code"].shape == (1, 1, 300, 8)


def test_layerwise_refuses_a_model_without_stages_and_bad_layers():
    with pytest.raises(ValueError, match="no layer-wise stages"):
        inference.fit(Autoencoder(64, 4, 8), _digits(10), method="layerwise")
    with pytest.raises(ValueError, match="at least one layer"):
        StackedAutoencoder(64, ())
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        Autoencoder(4, 2, (), likelihood="cross_entropy").reconstruction_error(torch.full((3, 4), 2.0))

