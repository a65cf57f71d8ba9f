import pytest
import torch

import inference
import zoo


def _data():
    return torch.tensor(zoo.load_dataset("blobs", n_samples=40, random_state=5).data)


@pytest.mark.parametrize("method,guide", [("map", "delta"), ("svi", "normal")])
def test_resume_continues_exactly(tmp_path, method, guide):
    data = _data()
    kw = dict(method=method, guide=guide, lr=0.05, progress_bar=False, seed=3, num_samples=5)
    full = inference.fit(zoo.create_model("gmm", n_components=2), data, num_steps=60, **kw)
    ck = tmp_path / "run.pt"
    inference.fit(zoo.create_model("gmm", n_components=2), data, num_steps=30, checkpoint=ck, checkpoint_every=10, **kw)
    assert ck.exists() and not list(tmp_path.glob("*.tmp"))
    state = inference.load_checkpoint(ck)  # weights_only=True
    assert state["step"] == 30
    resumed = inference.fit(zoo.create_model("gmm", n_components=2), data, num_steps=60, checkpoint=ck, resume=True, **kw)
    assert len(resumed.losses) == 60
    torch.testing.assert_close(torch.tensor(resumed.losses), torch.tensor(full.losses), rtol=1e-10, atol=1e-10)


def test_atomic_save_leaves_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "x.pt"
    inference.atomic_save({"a": torch.ones(2)}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        inference.atomic_save({"a": Unpicklable()}, path)
    assert torch.equal(inference.load_checkpoint(path)["a"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["x.pt"]


def test_early_stopping_with_patience():
    r = inference.fit(zoo.create_model("gmm", n_components=2), _data(), method="map", num_steps=5000, tol=1e-7,
                      patience=10, progress_bar=False)
    assert r.converged and len(r.losses) < 5000
