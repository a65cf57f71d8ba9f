"""The same fits on a CUDA device; skipped where torch sees no GPU."""
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
