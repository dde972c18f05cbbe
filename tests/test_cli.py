"""The command line end to end: ``anila train`` writes every file of a run folder, ``anila sample`` reads
it back, and bad input exits 2 with one line and no traceback."""

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from anila.cli import main
from anila.config import config_from_dict, load_config

REPO = Path(__file__).resolve().parents[1]
TINY = """
[data]
name = "rings"
[model]
width = 8
depth = 1
[sampler]
name = "anila"
step_size = 0.05
threshold = 1.0
[chains]
init = "noise"
scale = 2.0
[train]
iterations = 6
batch_size = 16
num_steps = 3
log_every = 2
checkpoint_every = 3
[eval]
grid_resolution = 16
num_samples = 32
"""


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "anila", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


@pytest.fixture
def tiny_config(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


def test_train_writes_the_whole_run_folder_and_sample_reads_it(tiny_config, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", str(tiny_config), "--out", str(out), "--quiet", "--set", "train.lr=0.001"]) == 0
    assert "kl_true_model" in capsys.readouterr().out

    resolved = tomllib.loads((out / "config.toml").read_text())
    assert resolved["train"]["lr"] == 0.001 and resolved["sampler"]["granularity"] == "elementwise"
    assert config_from_dict(resolved).to_dict() == resolved  # the resolved config reproduces itself

    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in records] == [2, 4, 6]
    assert {"iteration", "loss", "energy_pos", "energy_neg", "energy_gap", "grad_norm", "clip_fraction",
            "wall_time"} <= set(records[0])

    checkpoints = sorted((out / "checkpoints").glob("*.safetensors"))
    # iteration 0 (the guard's and resume's fallback), every checkpoint_every, the end; keep_checkpoints = 3
    assert [c.name for c in checkpoints] == ["iter_0000000.safetensors", "iter_0000003.safetensors",
                                             "iter_0000006.safetensors"]
    sidecar = json.loads(checkpoints[-1].with_suffix(".json").read_text())
    assert sidecar["iteration"] == 6 and sidecar["config"] == resolved

    for figure in ("samples.png", "density.png", "curves.png"):
        assert (out / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((out / "summary.json").read_text())["metrics"]
    assert summary["kl_true_model"] > 0 and 0 <= summary["tv"] <= 1

    npy = tmp_path / "samples.npy"
    assert main(["sample", str(out), "--num", "10", "--out", str(npy)]) == 0
    samples = np.load(npy, allow_pickle=False)
    assert samples.shape == (10, 2) and np.isfinite(samples).all()


@pytest.mark.parametrize("mutation,message", [
    (("[train]", "[train]\nlearning_rate = 0.1"), "train.learning_rate: unknown key; valid keys: iterations"),
    (("batch_size = 16", 'batch_size = "many"'), "train.batch_size: expected int, got 'many'"),
    (("step_size = 0.05", "step_size = -0.05"), "sampler.step_size must be a finite number > 0"),
    (('name = "anila"', 'name = "anneal"'), "sampler.name: must be one of langevin, anila, mala"),
    (('init = "noise"', 'init = "warm"'), "chains.init must be one of noise, data, persistent, replay"),
    (("[data]", "[datas]"), "datas: unknown section"),
])
def test_bad_configs_exit_2_with_one_line(tiny_config, tmp_path, mutation, message):
    tiny_config.write_text(TINY.replace(*mutation, 1))
    result = run_cli("train", str(tiny_config), "--out", str(tmp_path / "run"))
    assert result.returncode == 2
    assert result.stderr.strip().startswith("anila: error: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_missing_config_and_checkpoint_exit_2(tmp_path):
    result = run_cli("train", str(tmp_path / "nope.toml"))
    assert result.returncode == 2 and "config file not found" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    result = run_cli("sample", str(tmp_path / "nope.safetensors"), "--num", "3", "--out", str(tmp_path / "a.npy"))
    assert result.returncode == 2 and "checkpoint not found" in result.stderr


def test_set_override_errors_name_the_problem(tiny_config):
    from anila.errors import ConfigError

    with pytest.raises(ConfigError, match="expected section.key=value"):
        load_config(tiny_config, ["lr=3"])
    with pytest.raises(ConfigError, match="sampler.threshold: unknown key"):
        load_config(tiny_config, ["sampler.name=langevin"])  # AniLA's keys are not Langevin's
    assert load_config(tiny_config, ["sampler.granularity=sample"]).sampler.granularity == "sample"


@pytest.mark.parametrize("command", [[], ["train"], ["sample"], ["demo"]])
def test_help_for_every_command(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0 and "usage: anila" in capsys.readouterr().out


def tiny_image_root(name: str, root: Path) -> Path:
    """A few images in the real on-disk format of ``name``: CIFAR-10 binary batches or a folder of jpgs."""
    rng = np.random.default_rng(0)
    if name == "cifar10":
        folder = root / "cifar-10-batches-bin"
        folder.mkdir(parents=True)
        records = np.concatenate([rng.integers(0, 10, (12, 1)), rng.integers(0, 256, (12, 3072))], 1)
        for batch in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
            (folder / batch).write_bytes(records.astype(np.uint8).tobytes())
    else:
        from PIL import Image

        root.mkdir(parents=True)
        for i in range(10):
            Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(root / f"image_{i}.jpg")
    return root


@pytest.mark.parametrize("config", sorted((REPO / "configs").glob("*.toml")), ids=lambda p: p.name)
def test_every_shipped_config_runs_with_tiny_sizes(config, tmp_path):
    tiny = ["train.iterations=2", "train.batch_size=8", "train.num_steps=2", "train.checkpoint_every=0",
            "eval.grid_resolution=8", "eval.num_samples=8", "train.device=cpu"]
    data = tomllib.loads(config.read_text())["data"]
    if data.get("root"):
        tiny.append(f"data.root={tiny_image_root(data['name'], tmp_path / 'data')}")
    if "buffer_size" in config.read_text():
        tiny.append("chains.buffer_size=16")
    model = tomllib.loads(config.read_text()).get("model", {}).get("name")
    tiny += {"convnet": ["model.n_f=8"], "noise_conditional_convnet": ["model.n_f=8"],
             "resnet": ["model.width=8"]}.get(model, [])
    assert main(["train", str(config), "--out", str(tmp_path / "run"), "--quiet",
                 *[arg for item in tiny for arg in ("--set", item)]]) == 0


@pytest.mark.parametrize("data,model,message", [
    ({"name": "rings", "root": "/data"}, {}, "data.root, image_size and noise_std apply to image data sets only"),
    ({"name": "digits"}, {"name": "mlp"}, "model.name: model mlp takes point data"),
    ({"name": "rings"}, {"name": "convnet"}, "model.name: model convnet takes images"),
    ({"name": "mnist", "image_size": 16}, {}, "data.image_size applies to digits and folder only"),
    ({"name": "imagenet"}, {}, "data.name must be one of rings"),
])
def test_image_config_validation(data, model, message):
    from anila.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        config_from_dict({"data": data, "model": model})
    assert message in str(info.value)


def test_image_config_defaults_and_missing_files(tmp_path):
    config = config_from_dict({"data": {"name": "cifar10", "root": str(tmp_path)}})
    assert config.model["name"] == "convnet" and config.data.event_shape == (3, 32, 32)
    energy = config.build_energy()
    assert energy.image_size == 32
    path = tmp_path / "cifar.toml"
    path.write_text(f'[data]\nname = "cifar10"\nroot = "{tmp_path}"\n[train]\niterations = 1\n')
    result = run_cli("train", str(path), "--out", str(tmp_path / "run"))
    assert result.returncode == 2 and "cifar-10-batches" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_image_run_writes_grids_and_samples_from_its_checkpoint(tmp_path):
    config = REPO / "configs" / "digits_langevin.toml"
    out = tmp_path / "run"
    args = ["train", str(config), "--out", str(out), "--quiet", "--set", "train.iterations=2", "--set",
            "train.batch_size=8", "--set", "train.num_steps=2", "--set", "train.checkpoint_every=1"]
    assert main(args) == 0
    assert {p.name for p in out.glob("*.png")} == {"data.png", "samples.png", "samples_iter_0000001.png",
                                                    "samples_iter_0000002.png", "curves.png"}
    assert main(["sample", str(out), "--num", "3", "--out", str(tmp_path / "s.npy")]) == 0
    samples = np.load(tmp_path / "s.npy")
    assert samples.shape == (3, 1, 8, 8) and np.abs(samples).max() <= 1.0  # the sampler clamps to pixels
    assert main(["sample", str(out), "--num", "3", "--steps", "4", "--augment-every", "2", "--out",
                 str(tmp_path / "a.npy")]) == 0
    assert np.load(tmp_path / "a.npy").shape == (3, 1, 8, 8)
