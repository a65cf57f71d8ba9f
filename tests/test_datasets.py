import numpy as np
import pytest

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


def _write_idx(path, arr, code, compress=False):
    import gzip
    import struct

    header = bytes([0, 0, code, arr.ndim]) + b"".join(struct.pack(">I", s) for s in arr.shape)
    payload = header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()
    path.write_bytes(gzip.compress(payload) if compress else payload)


def test_mnist_idx_reader_round_trips(tmp_path):
    from zoo.datasets import load_mnist_idx

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(3, 4, 5), dtype=np.uint8)
    labels = np.array([7, 1, 0], dtype=np.uint8)
    _write_idx(tmp_path / "img.idx", images, 0x08)
    _write_idx(tmp_path / "lab.idx.gz", labels, 0x08, compress=True)
    floats = rng.standard_normal((2, 3)).astype(np.float32)
    _write_idx(tmp_path / "f.idx", floats, 0x0D)
    np.testing.assert_array_equal(load_mnist_idx(tmp_path / "img.idx"), images)
    np.testing.assert_array_equal(load_mnist_idx(tmp_path / "lab.idx.gz"), labels)
    np.testing.assert_array_equal(load_mnist_idx(tmp_path / "f.idx"), floats)


def test_mnist_idx_reader_refuses_bad_files(tmp_path):
    import pytest

    from zoo.datasets import load_mnist_idx

    (tmp_path / "magic").write_bytes(b"\x01\x02\x08\x01\x00\x00\x00\x01\x05")
    with pytest.raises(ValueError, match="magic number"):
        load_mnist_idx(tmp_path / "magic")
    (tmp_path / "code").write_bytes(b"\x00\x00\x07\x01\x00\x00\x00\x01\x05")
    with pytest.raises(ValueError, match="unknown IDX type code 0x07"):
        load_mnist_idx(tmp_path / "code")
    (tmp_path / "short").write_bytes(b"\x00\x00\x08\x02\x00\x00\x00\x02\x00\x00\x00\x02\x05")
    with pytest.raises(ValueError, match=r"declares shape \(2, 2\)"):
        load_mnist_idx(tmp_path / "short")
    with pytest.raises(ValueError, match="no IDX file"):
        load_mnist_idx(tmp_path / "missing")


def test_binary_digits_split_is_fixed_and_binary():
    a = zoo.load_dataset("binary_digits")
    b = zoo.load_dataset("binary_digits")
    np.testing.assert_array_equal(a.test_data, b.test_data)
    assert a.data.shape[1] == 64 and len(a.data) + len(a.test_data) == 1797
    assert set(np.unique(a.data)) <= {0.0, 1.0}
    raw = zoo.load_dataset("digits").data
    assert abs(a.data.mean() - (raw > 8).mean()) < 0.02  # the same threshold on the raw pixels


def test_synthetic_binary_data():
    ds = zoo.load_dataset("binary", n_samples=200, n_features=10, latent_dim=2, n_test=50)
    assert ds.data.shape == (200, 10) and ds.test_data.shape == (50, 10)
    assert set(np.unique(ds.data)) <= {0.0, 1.0}
    p = 1 / (1 + np.exp(-(ds.truth["z"] @ ds.truth["W"].T + ds.truth["b"])))
    assert abs(ds.data.mean() - p.mean()) < 0.03


def test_grid_of_25_and_mode_coverage():
    ds = zoo.load_dataset("grid", n_samples=5000, random_state=0)
    locs, scale = ds.truth["locs"], ds.truth["scale"]
    assert locs.shape == (25, 2) and np.allclose(locs.mean(0), 0) and np.allclose(np.unique(locs[:, 0]),
                                                                                    [-4, -2, 0, 2, 4])
    full = zoo.datasets.mode_coverage(ds.data, locs, scale)
    # exact draws: within 3 sds in 2-D with probability 1 - exp(-9/2) = 0.98889
    assert full["modes"] == 25 and abs(full["high_quality"] - (1 - np.exp(-4.5))) < 0.006
    assert full["counts"].sum() == round(full["high_quality"] * 5000)
    # draws from three of the modes only, plus far-away junk: three modes covered
    three = ds.data[np.isin(ds.target, [0, 7, 24])]
    junk = np.full((100, 2), 50.0)
    part = zoo.datasets.mode_coverage(np.vstack([three, junk]), locs, scale)
    assert part["modes"] == 3 and np.flatnonzero(part["counts"]).tolist() == [0, 7, 24]
    assert abs(part["high_quality"] - len(three) * 0.98889 / (len(three) + 100)) < 0.02
    # a mode needs min_fraction of the draws: 5 good draws out of 5000 do not cover it
    assert zoo.datasets.mode_coverage(np.vstack([ds.data[:5], np.full((4995, 2), 50.0)]), locs, scale)["modes"] == 0
    with pytest.raises(ValueError, match="same D"):
        zoo.datasets.mode_coverage(ds.data[:, :1], locs, scale)
    with pytest.raises(ValueError, match="NaN or infinity"):
        zoo.datasets.mode_coverage(np.array([[np.nan, 0.0]]), locs, scale)
    with pytest.raises(ValueError, match="spacing must be a finite"):
        zoo.load_dataset("grid", spacing=np.inf)
