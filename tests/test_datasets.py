import numpy as np

import zoo


def test_faithful_is_the_r_data_set():
    ds = zoo.load_dataset("faithful")
    assert ds.data.shape == (272, 2)
    np.testing.assert_allclose(ds.data.mean(0), [3.487783, 70.897059], atol=1e-6)
    assert ds.feature_names == ["eruptions", "waiting"]


def test_blobs_are_seeded_and_return_truth():
    a = zoo.load_dataset("blobs", n_samples=100, n_components=3, random_state=7)
    b = zoo.load_dataset("blobs", n_samples=100, n_components=3, random_state=7)
    np.testing.assert_array_equal(a.data, b.data)
    assert a.truth["locs"].shape == (3, 2)
    resid = a.data - a.truth["locs"][a.truth["assignment"]]
    assert abs(resid.std() - a.truth["scale"]) < 0.15
    d = np.linalg.norm(a.truth["locs"][:, None] - a.truth["locs"][None], axis=-1)
    assert d[~np.eye(3, dtype=bool)].min() >= 6.0


def test_sklearn_sets():
    assert zoo.load_dataset("iris").data.shape == (150, 4)
    assert zoo.load_dataset("digits").data.shape == (1797, 64)
