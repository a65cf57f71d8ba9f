"""The same fits on a CUDA device; skipped where torch sees no GPU."""
import math

import pytest
import torch

import inference
import zoo

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


@pytest.mark.parametrize("method,guide", [("map", "delta"), ("svi", "normal"), ("svi", "mvn"), ("em", None)])
def test_fit_follows_data_to_cuda(method, guide):
    data = torch.tensor(zoo.load_dataset("blobs", n_samples=100, random_state=0).data)
    cpu = inference.fit(zoo.create_model("gmm", n_components=3), data, method=method, guide=guide, num_steps=50,
                        progress_bar=False, num_samples=5)
    gpu = inference.fit(zoo.create_model("gmm", n_components=3), data.cuda(), method=method, guide=guide, num_steps=50,
                        progress_bar=False, num_samples=5)
    assert gpu.samples["locs"].is_cuda
    assert gpu.pointwise_log_likelihood().is_cuda
    assert abs(gpu.losses[-1] - cpu.losses[-1]) < 1e-3 * abs(cpu.losses[-1]) + 1e-6
    assert gpu.assignments(temperature=0).is_cuda


class _Shift(torch.nn.Module):
    """x = z + 1: a fixed generator, p_g = N(1, 1)."""

    def forward(self, z):
        return z + 1.0


def test_gan_fit_follows_data_to_cuda():
    """The networks are initialised on the CPU (the same on both devices); the noise and the minibatches come
    from each device's own generator, so the runs part after the first step and are compared where they
    converge."""
    data = torch.tensor(zoo.load_dataset("ring").data)
    kw = dict(method="adversarial", num_steps=300, batch_size=64, lr=2e-3, progress_bar=False, num_samples=100)
    cpu = inference.fit(zoo.create_model("gan", hidden=(16, 16)), data, **kw)
    gpu = inference.fit(zoo.create_model("gan", hidden=(16, 16)), data.cuda(), **kw)
    draws = gpu.samples["x"]
    assert draws.is_cuda and draws.shape == (1, 100, 2) and draws.dtype == torch.float64
    assert all(p.is_cuda for p in gpu.model.parameters())
    assert all(math.isfinite(v) for v in gpu.losses + gpu.discriminator_losses)
    # first step, the same networks on other draws: across draws the losses' sd is 0.004 (discriminator) and 5e-5
    # (generator), measured on the CPU
    assert abs(gpu.discriminator_losses[0] - cpu.discriminator_losses[0]) < 0.03
    assert abs(gpu.losses[0] - cpu.losses[0]) < 1e-3
    # the optimal-discriminator experiment (tests/test_gan.py) converges on both devices: D near D*, and the
    # discriminator losses near -V(D*) = 1.1635 (CPU: within 0.002)
    real = torch.randn(4000, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    grid = torch.linspace(-2.0, 3.0, 501, dtype=torch.float64)
    final = {}
    for device in ("cpu", "cuda"):
        model = zoo.GAN(1, noise_dim=1, hidden=(16,), generator=_Shift())
        r = inference.fit(model, real.to(device), method="adversarial", num_steps=1000, batch_size=1024, lr=1e-2,
                          progress_bar=False)
        gap = (model.discriminate(grid[:, None]).cpu() - torch.sigmoid(0.5 - grid)).abs().max().item()
        assert gap < 0.05, (device, gap)
        final[device] = sum(r.discriminator_losses[-100:]) / 100
    assert abs(final["cuda"] - final["cpu"]) < 0.03, final


def test_gan_resume_on_cuda_is_bit_identical(tmp_path):
    data = torch.tensor(zoo.load_dataset("ring").data).cuda()
    kw = dict(method="adversarial", batch_size=64, lr=2e-3, progress_bar=False, num_samples=20, seed=2)
    full = inference.fit(zoo.create_model("gan", hidden=(16,)), data, num_steps=100, **kw)
    ck = tmp_path / "gan.pt"
    inference.fit(zoo.create_model("gan", hidden=(16,)), data, num_steps=40, checkpoint=ck, **kw)
    resumed = inference.fit(zoo.create_model("gan", hidden=(16,)), data, num_steps=100, checkpoint=ck, resume=True,
                            **kw)
    assert resumed.losses == full.losses and resumed.discriminator_losses == full.discriminator_losses
    assert torch.equal(resumed.samples["x"], full.samples["x"])


def test_streamed_and_in_memory_fits_agree_on_cuda(tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    X = rng.normal(scale=6.0, size=(3, 4))[rng.integers(3, size=3000)] + rng.normal(size=(3000, 4))
    np.save(tmp_path / "x.npy", X)
    for est in (zoo.GaussianMixture, zoo.BayesianGaussianMixture):
        ref = est(3, max_iter=10, tol=0, random_state=0, device="cuda").fit(torch.as_tensor(X).cuda())
        src = est(3, max_iter=10, tol=0, random_state=0, device="cuda").fit(str(tmp_path / "x.npy"))
        assert np.max(np.abs(src.means_ - ref.means_)) <= 1e-10 * np.max(np.abs(ref.means_))
    km = zoo.KMeans(3, random_state=0, device="cuda").fit(str(tmp_path / "x.npy"))
    assert np.allclose(km.cluster_centers_, zoo.KMeans(3, random_state=0).fit(X).cluster_centers_, rtol=1e-10)
