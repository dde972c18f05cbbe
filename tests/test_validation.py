"""Bad input fails at the boundary with one line naming the problem: every config section (unknown keys, wrong
types, NaN / infinite numbers, ranges) and the data (shapes, dtypes, finite values, ranges, empty folders)."""

import pytest
import torch

from anila.cli import main
from anila.config import config_from_dict
from anila.data.validate import validate_batch, validate_images, validate_points
from anila.errors import ConfigError, DataError

# (section, key, value, message fragment): for every section an unknown key, a wrong type and a bad value
BAD = [
    ("data", "colour", 1, "data.colour: unknown key; valid keys: name, root"),
    ("data", "name", 3, "data.name: expected str, got 3"),
    ("data", "name", "imagenet", "data.name must be one of"),
    ("model", "size", 4, "model.size: unknown key; valid keys: name, width"),
    ("model", "width", 1.5, "model.width: expected int, got 1.5"),
    ("model", "depth", 0, "model.depth must be >= 1"),
    ("model", "negative_slope", float("nan"), "model.negative_slope: expected a finite number, got nan"),
    ("sampler", "temperature", 1.0, "sampler.temperature: unknown key"),
    ("sampler", "step_size", "big", "sampler.step_size: expected float, got 'big'"),
    ("sampler", "threshold", -1.0, "sampler.threshold must be a finite number > 0"),
    ("sampler", "step_size", float("inf"), "sampler.step_size: expected a finite number, got inf"),
    ("chains", "size", 3, "chains.size: unknown key"),
    ("chains", "buffer_size", "many", "chains.buffer_size: expected int"),
    ("chains", "reinit_fraction", 2.0, "chains.reinit_fraction must be in [0, 1], got 2.0"),
    ("chains", "buffer_size", 0, "chains.buffer_size must be >= 1, got 0"),
    ("objective", "weight", 1.0, "objective.weight: unknown key"),
    ("train", "lr", "fast", "train.lr: expected float"),
    ("train", "batch_size", True, "train.batch_size: expected int, got True"),
    ("train", "iterations", 1e3, "train.iterations: expected int, got 1000.0"),
    ("train", "seed", -1, "train.seed must be >= 0, got -1"),
    ("train", "l2_reg", float("nan"), "train.l2_reg: expected a finite number, got nan"),
    ("train", "grad_clip", float("nan"), "train.grad_clip: expected a finite number"),
    ("train", "ema_decay", 1.0, "train.ema_decay must be in [0, 1), got 1.0"),
    ("train", "keep_checkpoints", -1, "train.keep_checkpoints must be >= 0"),
    ("train", "device", "tpu", "train.device must be auto, cpu, cuda or cuda:N"),
    ("eval", "resolution", 8, "eval.resolution: unknown key"),
    ("eval", "num_samples", 0, "eval.num_samples must be in [1, 1000000], got 0"),
    ("eval", "bound", float("nan"), "eval.bound: expected a finite number"),
    ("guard", "retries", 2, "guard.retries: unknown key"),
    ("guard", "max_retries", 1.5, "guard.max_retries: expected int"),
    ("guard", "shrink", 0.0, "guard.shrink must be in (0, 1)"),
    ("guard", "max_energy_gap", -1.0, "guard.max_energy_gap must be a finite number > 0"),
]


@pytest.mark.parametrize("section,key,value,message", BAD)
def test_every_section_rejects_bad_values_naming_the_key(section, key, value, message):
    raw = {section: {key: value}}
    if section == "objective":
        raw["objective"]["name"] = "cd"
    with pytest.raises(ConfigError) as info:
        config_from_dict(raw)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_every_section_of_a_config_is_covered_by_the_bad_input_table():
    from anila.config import SECTIONS

    assert {section for section, *_ in BAD} == set(SECTIONS)


@pytest.mark.parametrize("images,message", [
    (torch.zeros(4, 8, 8), "must be a (N, C, H, W) tensor"),
    (torch.zeros(0, 1, 8, 8), "no images"),
    (torch.zeros(4, 1, 8, 8, dtype=torch.uint8), "dtype torch.uint8"),
    (torch.tensor([0.0, float("nan"), 0.5, 1.0]).view(1, 1, 2, 2), "1 of 4 values are NaN or infinite"),
    (torch.full((2, 1, 8, 8), 255.0), "outside [-1.0, 1.0]; scale pixels"),
    (torch.zeros(2, 3, 8, 8), "images are (3, 8, 8), the config expects (1, 8, 8)"),
])
def test_image_validation_names_the_problem(images, message):
    with pytest.raises(DataError) as info:
        validate_images(images, name="digits", event_shape=(1, 8, 8))
    assert message in str(info.value) and str(info.value).startswith("digits: ")
    good = torch.rand(3, 1, 8, 8) * 2 - 1
    assert validate_images(good, name="digits", event_shape=(1, 8, 8)) is good


def test_point_and_batch_validation():
    with pytest.raises(DataError, match="points must be a"):
        validate_points(torch.zeros(5), name="rings")
    with pytest.raises(DataError, match="3 coordinates, the model expects 2"):
        validate_points(torch.zeros(5, 3), name="rings", dim=2)
    with pytest.raises(DataError, match="NaN or infinite"):
        validate_points(torch.tensor([[0.0, float("inf")]]), name="rings")
    with pytest.raises(DataError, match=r"returned \(4, 2\), expected \(8, 2\)"):
        validate_batch(torch.zeros(4, 2), name="rings", batch_size=8, event_shape=(2,))
    with pytest.raises(DataError, match="returned list"):
        validate_batch([0.0], name="rings", batch_size=1, event_shape=(2,))
    assert validate_batch(torch.zeros(8, 2), name="rings", batch_size=8, event_shape=(2,), device="cpu").shape == (8, 2)


def test_cli_empty_image_folder_exits_2_with_one_line(tmp_path, capsys):
    empty = tmp_path / "images"
    empty.mkdir()
    config = tmp_path / "folder.toml"
    config.write_text(f'[data]\nname = "folder"\nroot = "{empty}"\nimage_size = 8\n[train]\niterations = 1\n')
    assert main(["train", str(config), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no .jpg/.jpeg/.png images under" in err
