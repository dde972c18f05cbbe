"""Your own point cloud (``anila.data.points``, ``[data] name = "points"``): every file format, every bad input,
the split and standardisation, and short runs for D = 1, 2 and 5."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file

from anila.config import config_from_dict
from anila.data.points import MIN_POINTS, PointCloud, PointDataError, load_points, point_metrics
from anila.errors import ConfigError, DataError

pytestmark = pytest.mark.usefixtures("one_thread")


def _points(n=50, d=3, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32) * 2 + 7


# --------------------------------------------------------------------------------------------- formats


def test_npy_csv_and_safetensors_read_the_same_points(tmp_path):
    x = _points()
    np.save(tmp_path / "p.npy", x)
    np.savetxt(tmp_path / "plain.csv", x, delimiter=",", fmt="%.9g")
    np.savetxt(tmp_path / "header.csv", x, delimiter=",", fmt="%.9g", header="a, b,c", comments="")
    save_file({"points": x}, str(tmp_path / "p.safetensors"))
    save_file({"x": x, "labels": np.zeros(50, dtype=np.float32)}, str(tmp_path / "two.safetensors"))
    for path, key in (("p.npy", None), ("plain.csv", None), ("header.csv", None), ("p.safetensors", None),
                      ("two.safetensors", "x")):
        loaded = load_points(tmp_path / path, key=key)
        assert loaded.dtype == torch.float32 and loaded.shape == (50, 3), path
        assert torch.allclose(loaded, torch.from_numpy(x), atol=1e-5), path


def test_one_dimensional_arrays_are_points_in_1d(tmp_path):
    np.save(tmp_path / "p.npy", np.arange(20.0))
    assert load_points(tmp_path / "p.npy").shape == (20, 1)
    (tmp_path / "p.csv").write_text("value\n" + "\n".join(str(v) for v in range(20)) + "\n\n")
    assert torch.equal(load_points(tmp_path / "p.csv")[:, 0], torch.arange(20.0))


@pytest.mark.parametrize("case, match", [
    ("missing", "file not found; set data.path"),
    ("suffix", "unknown point file type '.txt'"),
    ("text_column", "column 2 \\('label'\\) is not numeric \\(line 3: 'cat'\\)"),
    ("ragged", "line 2 has 2 fields, expected 3"),
    ("nan", "1 values are NaN or infinite \\(first: row 4, column 2\\)"),
    ("inf", "NaN or infinite"),
    ("shape", "must be an \\(N, D\\) array.*shape \\(12, 2, 2\\)"),
    ("few", f"only 5 points; need at least {MIN_POINTS}"),
    ("object", "not a numeric .npy array"),
    ("empty", "the file is empty"),
    ("several", "holds 2 tensors \\(a, b\\); set data.key"),
    ("key", "no tensor named 'z'"),
])
def test_bad_input_raises_one_line_naming_the_file(tmp_path, case, match):
    x = _points(12, 3)
    path, key = tmp_path / "p.npy", None
    if case == "suffix":
        path = tmp_path / "p.txt"
        path.write_text("1,2\n")
    elif case == "text_column":
        path = tmp_path / "p.csv"
        path.write_text("x,label,y\n1,2,3\n4,cat,6\n")
    elif case == "ragged":
        path = tmp_path / "p.csv"
        path.write_text("1,2,3\n4,5\n")
    elif case in ("nan", "inf"):
        x[3, 1] = np.nan if case == "nan" else np.inf
        np.save(path, x)
    elif case == "shape":
        np.save(path, np.zeros((12, 2, 2)))
    elif case == "few":
        np.save(path, x[:5])
    elif case == "object":
        np.save(path, np.array([{"a": 1}] * 12, dtype=object))
    elif case == "empty":
        path = tmp_path / "p.csv"
        path.write_text("\n\n")
    elif case in ("several", "key"):
        path = tmp_path / "p.safetensors"
        save_file({"a": x, "b": x}, str(path))
        key = "z" if case == "key" else None
    with pytest.raises(PointDataError, match=match) as info:
        load_points(path, key=key)
    message = str(info.value)
    assert "\n" not in message and (str(path) in message)
    assert isinstance(info.value, ValueError) and isinstance(info.value, DataError)


# --------------------------------------------------------------------------------------------- the cloud


def test_split_is_disjoint_seeded_and_standardised_on_the_training_rows():
    x = torch.from_numpy(_points(200, 4))
    cloud = PointCloud(x, holdout=0.1)
    assert (len(cloud.train), len(cloud.heldout), cloud.dim) == (180, 20, 4)
    back = torch.cat([cloud.to_data(cloud.train), cloud.to_data(cloud.heldout)])
    # every row exactly once: sort both by their first coordinate
    assert torch.allclose(back[back[:, 0].argsort()], x[x[:, 0].argsort()], atol=1e-5)
    assert torch.allclose(cloud.train.mean(0), torch.zeros(4), atol=1e-5)
    assert torch.allclose(cloud.train.std(0), torch.ones(4), atol=1e-5)
    assert torch.equal(PointCloud(x, holdout=0.1).heldout, cloud.heldout)  # the split is seeded
    assert not torch.equal(PointCloud(x, holdout=0.1, split_seed=1).heldout, cloud.heldout)
    raw = PointCloud(x, standardize=False)
    assert torch.equal(raw.to_data(raw.train), raw.train) and raw.record()["scale"] == [1.0] * 4
    record = cloud.record()
    assert record["num_train"] == 180 and record["mean"] == cloud.mean.tolist()
    assert torch.allclose(torch.tensor(record["mean"]), cloud.to_data(cloud.train).mean(0), atol=1e-4)


def test_cloud_refuses_constant_columns_and_bad_holdout():
    x = torch.from_numpy(_points(40, 2))
    x[:, 1] = 3.0
    with pytest.raises(PointDataError, match="column 2 is constant.*standardize = false"):
        PointCloud(x)
    assert PointCloud(x, standardize=False).dim == 2
    with pytest.raises(PointDataError, match="holdout must be a fraction"):
        PointCloud(torch.randn(40, 2), holdout=1.0)
    with pytest.raises(PointDataError, match="lower data.holdout"):
        PointCloud(torch.randn(MIN_POINTS, 2), holdout=0.5)


def test_sampler_draws_training_points():
    cloud = PointCloud(torch.randn(100, 3))
    batch = cloud.sampler()(64, torch.Generator().manual_seed(0))
    assert batch.shape == (64, 3)
    assert (batch[:, None, :] == cloud.train[None]).all(-1).any(1).all()


def test_point_metrics_separate_matching_from_shifted_samples():
    g = torch.Generator().manual_seed(0)
    ref = torch.randn(400, 6, generator=g)
    same = point_metrics(torch.randn(400, 6, generator=g), ref, generator=g)
    shifted = point_metrics(torch.randn(400, 6, generator=g) + 1.0, ref, generator=g)
    for key in ("mmd", "energy_distance", "sliced_w2"):
        assert shifted[key] > 5 * abs(same[key]) and shifted[key] > 0.05, key
    broken = torch.randn(400, 6, generator=g)
    broken[:100] = float("nan")
    assert point_metrics(broken, ref, generator=g)["non_finite_samples"] == 0.25


# --------------------------------------------------------------------------------------------- config and runs


def test_config_errors_name_the_key_and_the_fix(tmp_path):
    with pytest.raises(ConfigError, match="data.path: name = \"points\" reads your points from a file"):
        config_from_dict({"data": {"name": "points"}})
    with pytest.raises(ConfigError, match=r"data.path: .*missing.csv: file not found"):
        config_from_dict({"data": {"name": "points", "path": str(tmp_path / "missing.csv")}})
    with pytest.raises(ConfigError, match="apply to name = \"points\" only"):
        config_from_dict({"data": {"name": "rings", "path": "x.npy"}})
    np.save(tmp_path / "p.npy", _points(30, 7))
    config = config_from_dict({"data": {"name": "points", "path": str(tmp_path / "p.npy")}})
    assert config.data.event_shape == (7,) and config.model["name"] == "mlp"
    assert config.build_energy()(torch.randn(5, 7)).shape == (5,)
    with pytest.raises(ConfigError, match="data.holdout"):
        config_from_dict({"data": {"name": "points", "path": str(tmp_path / "p.npy"), "holdout": 0.0}})


@pytest.mark.parametrize("dim, figures", [(1, {"density.png"}), (2, {"density.png", "samples.png"}),
                                          (5, {"corner.png"})])
def test_a_run_on_a_point_file_writes_metrics_figures_and_samples_in_data_units(tmp_path, dim, figures):
    from anila.train.run import run_training

    x = np.random.default_rng(1).normal(size=(300, dim)).astype(np.float32) + 100.0
    np.savetxt(tmp_path / "data.csv", x, delimiter=",", header=",".join(f"c{i}" for i in range(dim)), comments="")
    config = config_from_dict({
        "data": {"name": "points", "path": str(tmp_path / "data.csv"), "holdout": 0.2},
        "sampler": {"name": "langevin", "step_size": 0.02},
        "train": {"iterations": 4, "num_steps": 2, "batch_size": 32, "log_every": 2},
        "eval": {"grid_resolution": 16, "num_samples": 120}})
    out = tmp_path / "run"
    summary = run_training(config, out, progress=False)
    names = {p.name for p in summary.figures}
    assert names == figures | {"curves.png"} and all(p.is_file() for p in summary.figures)  # curves: every run
    written = json.loads((out / "summary.json").read_text())["metrics"]
    assert set(written) >= {"mmd", "energy_distance", "sliced_w2", "floor_mmd", "floor_sliced_w2"}
    assert written["sliced_w2"] > 0
    record = json.loads((out / "points.json").read_text())
    assert (record["num_train"], record["num_heldout"], record["dim"]) == (240, 60, dim)
    assert np.allclose(record["mean"], x.mean(0), atol=0.3)
    samples = np.load(out / "samples.npy")
    assert samples.shape == (120, dim)
    # chains start from N(0, 2²) in standardised coordinates: back in data units they sit near the data's mean
    assert abs(float(samples.mean()) - 100.0) < 3.0
