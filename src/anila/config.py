"""Typed, validated run configs from TOML (parsed, never evaluated), with ``--set`` overrides.

A config has eight sections; each maps onto one library object, whose constructor is the schema:

    [data]     name = a toy data set, points (your own file: path, key, standardize, holdout), or an image set
               (digits | mnist | mnist5k | cifar10 | folder) with root, image_size, split, noise_std
                                                          -> anila.data.toy_dataset / PointCloud / image_dataset
    [model]    name = mlp | convnet | resnet | noise_conditional_mlp | noise_conditional_convnet + that class's
               arguments -> the energy (``dim``, ``in_channels`` and ``image_size`` come from the data; the
               noise-conditional ``E(x, σ)`` go with multilevel_dsm and drl)
    [sampler]  name = a registered sampler (anila.samplers.REGISTRY) + that sampler's fields; adapt = true
               (Metropolis samplers) tunes step_size across iterations toward target_accept
    [chains]   ChainInit's fields (init = noise | data | persistent | replay | generator, ...)
    [objective] name = cd (default: MCMC negatives) | sm | dsm | ssm | nce | perturbation_nce + its fields;
               the sampler still draws the end-of-run samples for MCMC-free objectives
    [train]    TrainSettings' fields (iterations, batch_size, num_steps, lr, ...)
    [eval]     EvalConfig's fields (grid resolution, samples drawn for figures)
    [guard]    GuardSettings' fields (max_retries, shrink, max_energy_gap: the divergence guard)

A top-level ``preset = "<name>"`` (``anila.presets``: langevin, anila, hmc_short_run, ...) fills in a named
recipe under the config's own keys.

Unknown sections or keys, wrong types (an int where a float is expected is accepted, never the reverse;
booleans are not numbers), NaN, infinite or float32-overflowing numbers and out-of-range values raise
:class:`ConfigError` with a one-line message naming ``section.key`` and the valid choices.
:meth:`Config.to_dict` is the resolved config (every default filled in) that a run writes to ``config.toml``
and that reproduces it. A config file must have a ``[data]`` section (an empty file is refused rather than
silently training the defaults).
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import math
import tomllib
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from anila.chains.init import ChainInit
from anila.data.images import DEFAULT_SIZES, IMAGE_DATASETS
from anila.data.points import PointDataError, load_points_cached
from anila.data.toy import TOY_DATASETS
from anila.energies.conv import ConvNetEnergy, ResNetEnergy
from anila.energies.networks import MLPEnergy
from anila.energies.noise_conditional import NoiseConditionalConvNet
from anila.errors import ConfigError
from anila.objectives.base import NOISE_CONDITIONAL_MODELS, ObjectiveSpec
from anila.objectives.score_matching import NoiseConditionalMLP
from anila.objectives.select import OBJECTIVES
from anila.objectives.select import name_of as objective_name
from anila.presets import PRESET_KEY, merge_preset
from anila.samplers import REGISTRY, DualAveraging, name_of
from anila.train.acceleration import check_device_options
from anila.train.guard import GuardSettings
from anila.train.loop import TrainSettings, resolve_device

ENERGIES: dict[str, type[nn.Module]] = {"mlp": MLPEnergy, "convnet": ConvNetEnergy, "resnet": ResNetEnergy,
                                         "noise_conditional_mlp": NoiseConditionalMLP,
                                         "noise_conditional_convnet": NoiseConditionalConvNet}
POINT_MODELS = ("mlp", "noise_conditional_mlp")  # the others take images
DERIVED_MODEL_KEYS = ("dim", "in_channels", "image_size")
IMAGE_SIZES = {"mnist": 28, "mnist5k": 28, "cifar10": 32}
LABELLED_DATASETS = ("digits", "mnist", "mnist5k", "cifar10")
POINT_FILE = "points"  # [data] name of a point cloud read from data.path
MAX_GRID_RESOLUTION = 4096  # eval.grid_resolution at most: 16.8M grid cells
MAX_EVAL_SAMPLES = 1_000_000  # eval.num_samples at most


@dataclass(frozen=True)
class DataConfig:
    """The ``[data]`` section: which data set to train on.

    Toy sets take no other key. Image sets: ``root`` (folder with the files; not needed for ``digits``),
    ``image_size`` (``digits``: upsample from 8; ``folder``: resize and centre-crop; default 8 / 32),
    ``split`` (``train`` / ``test``, MNIST and CIFAR-10), ``noise_std`` (dequantisation noise added to
    every batch; the AniLA paper used 0.03) and ``holdout_class`` (labelled sets digits, mnist, cifar10: train
    without this class, e.g. to test OOD detection on it, ``docs/applications.md``).

    ``name = "points"``: your own ``(N, D)`` points from ``path`` (``.npy``, ``.csv``, ``.safetensors``; a relative
    path starts from the working folder), ``key`` (the tensor of a safetensors file with several),
    ``standardize`` (zero mean, unit variance per coordinate; undone for samples) and ``holdout`` (fraction of
    rows kept out of training for the sample metrics); see :mod:`anila.data.points`.
    """

    name: str = "rings"
    root: str | None = None
    image_size: int | None = None
    split: str = "train"
    noise_std: float = 0.0
    holdout_class: int | None = None
    path: str | None = None
    key: str | None = None
    standardize: bool = True
    holdout: float = 0.1

    def __post_init__(self) -> None:
        names = TOY_DATASETS + (POINT_FILE,) + IMAGE_DATASETS
        if self.name not in names:
            raise ValueError(f"name must be one of {', '.join(names)}; got {self.name!r}")
        if self.name == POINT_FILE:
            self._check_point_file()
        elif self.path is not None or self.key is not None or not self.standardize or self.holdout != 0.1:
            raise ValueError(f"path: path, key, standardize and holdout apply to name = \"{POINT_FILE}\" only")
        if self.is_points and (self.root is not None or self.image_size is not None or self.noise_std):
            raise ValueError("root, image_size and noise_std apply to image data sets only")
        if self.image_size is not None and (self.name in IMAGE_SIZES or self.image_size < 4):
            raise ValueError(f"image_size applies to digits and folder only, and must be >= 4; got {self.image_size}")
        if self.split not in ("train", "test") or self.noise_std < 0:
            raise ValueError(f"split must be train or test and noise_std >= 0; got {self.split!r}, {self.noise_std}")
        if self.holdout_class is not None and (self.name not in LABELLED_DATASETS or self.holdout_class < 0):
            raise ValueError(f"holdout_class applies to {', '.join(LABELLED_DATASETS)} and must be >= 0; "
                             f"got {self.holdout_class} for {self.name}")

    def _check_point_file(self) -> None:
        if self.path is None:
            raise ValueError(f"path: name = \"{POINT_FILE}\" reads your points from a file; set path = "
                             "\"points.csv\" (or .npy, .safetensors)")
        if not 0 < self.holdout < 1:
            raise ValueError(f"holdout: must be a fraction in (0, 1), got {self.holdout}")
        try:
            load_points_cached(self.path, key=self.key)
        except PointDataError as exc:
            raise ValueError(f"path: {exc}") from None

    @property
    def is_toy(self) -> bool:
        return self.name in TOY_DATASETS

    @property
    def is_points(self) -> bool:
        """Point data: a 2-D toy or your own point file."""
        return self.is_toy or self.name == POINT_FILE

    @property
    def event_shape(self) -> tuple[int, ...]:
        """Shape of one sample, known without reading any file (but a point file's, read once and cached)."""
        if self.is_toy:
            return (2,)
        if self.name == POINT_FILE:
            return (load_points_cached(self.path, key=self.key).shape[1],)  # type: ignore[arg-type]  # path: checked
        size = IMAGE_SIZES.get(self.name) or self.image_size or DEFAULT_SIZES[self.name]
        return (3 if self.name in ("cifar10", "folder") else 1, size, size)


@dataclass(frozen=True)
class EvalConfig:
    """The ``[eval]`` section: end-of-run figures and grid metrics.

    ``grid_resolution``: cells per axis of the density grid (2 to :data:`MAX_GRID_RESOLUTION`); ``num_samples``:
    chains drawn for the sample figure (from fresh chain-init noise with the training sampler and ``num_steps``);
    ``bound``: half-width of the square plotted and integrated over (default: the data set's own).
    """

    grid_resolution: int = 256
    num_samples: int = 2000
    bound: float | None = None

    def __post_init__(self) -> None:
        if not 2 <= self.grid_resolution <= MAX_GRID_RESOLUTION:
            raise ValueError(f"grid_resolution must be in [2, {MAX_GRID_RESOLUTION}], got {self.grid_resolution}")
        if not 1 <= self.num_samples <= MAX_EVAL_SAMPLES:
            raise ValueError(f"num_samples must be in [1, {MAX_EVAL_SAMPLES}], got {self.num_samples}")
        if self.bound is not None and not self.bound > 0:
            raise ValueError(f"bound must be > 0, got {self.bound}")


SECTIONS = ("data", "model", "sampler", "chains", "objective", "train", "eval", "guard")
FLOAT32_MAX = 3.4028234663852886e38  # numbers beyond it become inf in the float32 tensors they set
SMOOTH_ACTIVATIONS = ("silu", "elu", "softplus", "tanh")


@dataclass(frozen=True)
class Config:
    """A validated run configuration; build one with :func:`load_config` or :func:`config_from_dict`."""

    data: DataConfig
    model: dict[str, Any]
    sampler: Any
    chains: ChainInit
    train: TrainSettings
    eval: EvalConfig
    objective: ObjectiveSpec = dataclasses.field(default_factory=lambda: OBJECTIVES["cd"]())
    guard: GuardSettings = dataclasses.field(default_factory=GuardSettings)
    adaptation: DualAveraging | None = None  # [sampler] adapt = true: the step size tuned across iterations

    def build_energy(self) -> nn.Module:
        """The configured energy (a fresh, untrained network)."""
        kwargs = {k: v for k, v in self.model.items() if k != "name"}
        return ENERGIES[self.model["name"]](**kwargs, **derived_model_kwargs(self.model["name"], self.data))

    def to_dict(self) -> dict[str, dict[str, Any]]:
        adapt = {} if self.adaptation is None else {"adapt": True, "target_accept": self.adaptation.target_accept}
        return {
            "data": _fields(self.data),
            "model": dict(self.model),
            "sampler": {"name": name_of(self.sampler), **_fields(self.sampler), **adapt},
            "chains": _fields(self.chains),
            "objective": {"name": objective_name(self.objective), **_fields(self.objective)},
            "train": _fields(self.train),
            "eval": _fields(self.eval),
            "guard": _fields(self.guard),
        }


def derived_model_kwargs(model_name: str, data: DataConfig) -> dict[str, int]:
    """The model arguments that come from the data: ``dim`` for point models, channels and size for images."""
    shape = data.event_shape
    if model_name in POINT_MODELS:
        if len(shape) != 1:
            raise ValueError(f"model {model_name} takes point data; {data.name} is images: use convnet or resnet")
        return {"dim": shape[0]}
    if len(shape) != 3:
        raise ValueError(f"model {model_name} takes images; {data.name} is points: use mlp")
    return {"in_channels": shape[0], "image_size": shape[1]}


def _fields(obj: Any) -> dict[str, Any]:
    out = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if value is not None:
            out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def _type_name(hint: Any) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):  # a tensor is never settable from a file
        return " or ".join(_type_name(a) for a in typing.get_args(hint) if a not in (type(None), torch.Tensor))
    if typing.get_origin(hint) is tuple:
        return f"a list of {len(typing.get_args(hint))} numbers"
    return getattr(hint, "__name__", str(hint))


def _coerce(value: Any, hint: Any) -> Any:
    """Return ``value`` converted to ``hint`` or raise ``TypeError``."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(hint):
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg)
            except TypeError:
                pass
        raise TypeError
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, list | tuple) or len(value) != len(args):
            raise TypeError
        return tuple(_coerce(v, a) for v, a in zip(value, args, strict=True))
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise TypeError
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise TypeError
    if hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise TypeError
    if hint is str:
        if isinstance(value, str):
            return value
        raise TypeError
    raise TypeError  # not settable from a config (e.g. a tensor)


def _parameters(cls: type) -> dict[str, Any]:
    """Constructor parameters and their types (dataclass fields or ``__init__`` arguments)."""
    if dataclasses.is_dataclass(cls):
        hints = typing.get_type_hints(cls)
        return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}
    init = cls.__init__  # type: ignore[misc]  # the class's own constructor, looked up on the class
    hints = typing.get_type_hints(init)
    params = inspect.signature(init).parameters
    return {name: hints.get(name, Any) for name in params if name != "self"}


def _checked_kwargs(section: str, cls: type, values: dict[str, Any], exclude: tuple[str, ...] = ()) -> dict:
    params = {k: v for k, v in _parameters(cls).items() if k not in exclude}
    kwargs = {}
    for key, value in values.items():
        if key not in params:
            raise ConfigError(f"{section}.{key}: unknown key; valid keys: {', '.join(['name', *params])}"
                              if section in ("model", "sampler", "objective") else
                              f"{section}.{key}: unknown key; valid keys: {', '.join(params)}")
        try:
            kwargs[key] = _coerce(value, params[key])
        except TypeError:
            raise ConfigError(f"{section}.{key}: expected {_type_name(params[key])}, got {value!r}") from None
        numbers = kwargs[key] if isinstance(kwargs[key], tuple) else (kwargs[key],)
        if any(isinstance(v, float) and not math.isfinite(v) for v in numbers):
            raise ConfigError(f"{section}.{key}: expected a finite number, got {value!r}")
        if any(isinstance(v, int | float) and not isinstance(v, bool) and abs(v) > FLOAT32_MAX for v in numbers):
            raise ConfigError(f"{section}.{key}: {value!r} overflows float32 (the tensors' type); |value| must be "
                              f"<= {FLOAT32_MAX:.4g}")
    return kwargs


@contextlib.contextmanager
def section_errors(section: str) -> Iterator[None]:
    """Library code raises :class:`ValueError` naming its own argument (``"step_size must be > 0"``); inside this
    block such an error becomes a :class:`~anila.errors.ConfigError` naming the config key
    (``"sampler.step_size must be > 0"``). Wrap only calls whose arguments are that section's keys."""
    try:
        yield
    except ValueError as exc:
        raise ConfigError(f"{section}.{exc}") from None


def _construct(section: str, cls: type, kwargs: dict[str, Any], **extra: Any) -> Any:
    with section_errors(section):
        return cls(**kwargs, **extra)


def check_train_device(train: TrainSettings) -> torch.device:
    """The device ``[train]`` asks for, on this machine: ``train.device`` that it lacks (CUDA on a CPU-only
    build, a GPU index it does not have) or ``train.cuda_graphs`` off CUDA raise a :class:`ConfigError` naming
    the key. Checked when a run starts, not when a config is read (a CUDA run's checkpoint samples on a CPU)."""
    with section_errors("train"):
        device = resolve_device(train.device)
        check_device_options(train.cuda_graphs, device)
    return device


def _named(section: str, values: dict[str, Any], registry: dict[str, type]) -> tuple[str, type, dict]:
    values = dict(values)
    name = values.pop("name", None)
    if name not in registry:
        raise ConfigError(f"{section}.name: must be one of {', '.join(registry)}; got {name!r}")
    return name, registry[name], values


def config_from_dict(raw: dict[str, Any]) -> Config:
    """Validate a parsed config (``{section: {key: value}}``) and build its objects.

    A top-level ``preset = "<name>"`` fills in a named recipe under the config's own keys
    (:mod:`anila.presets`)."""
    raw = merge_preset(raw)
    for key, value in raw.items():
        if key not in SECTIONS:
            raise ConfigError(f"{key}: unknown section; valid sections: {', '.join(SECTIONS)}")
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: must be a [{key}] table, got {value!r}")
    sections = {name: raw.get(name, {}) for name in SECTIONS}

    data = _construct("data", DataConfig, _checked_kwargs("data", DataConfig, sections["data"]))

    default_model = "mlp" if data.is_points else "convnet"
    model_name, model_cls, model_values = _named("model", {"name": default_model, **sections["model"]}, ENERGIES)
    model_kwargs = _checked_kwargs("model", model_cls, model_values, exclude=DERIVED_MODEL_KEYS)
    try:
        derived = derived_model_kwargs(model_name, data)
    except ValueError as exc:
        raise ConfigError(f"model.name: {exc}") from None
    _construct("model", model_cls, model_kwargs, **derived)  # validate ranges now, not mid-run
    defaults = {k: p.default for k, p in inspect.signature(model_cls).parameters.items()
                if k not in DERIVED_MODEL_KEYS and p.default is not inspect.Parameter.empty}
    model = {"name": model_name, **defaults, **model_kwargs}

    sampler, adaptation = _sampler(sections["sampler"])

    chains = _construct("chains", ChainInit, _checked_kwargs("chains", ChainInit, sections["chains"]))
    _, objective_cls, objective_values = _named("objective", {"name": "cd", **sections["objective"]}, OBJECTIVES)
    objective = _construct("objective", objective_cls, _checked_kwargs("objective", objective_cls, objective_values))
    _check_model_fits(objective, model_name, data)
    if objective.needs_smooth_energy and model.get("activation", "leaky_relu") not in SMOOTH_ACTIVATIONS:
        raise ConfigError(f"objective.name: {sections['objective']['name']} uses second derivatives of the energy, "
                          f"which are zero for a piecewise-linear network; set model.activation to one of "
                          f"{', '.join(SMOOTH_ACTIVATIONS)}")
    train = _construct("train", TrainSettings, _checked_kwargs("train", TrainSettings, sections["train"]))
    if train.cuda_graphs and sampler.carries_gradient:
        raise ConfigError("train.cuda_graphs: only samplers that recompute E and ∇E at every step (langevin, anila, "
                          "psgld) run as CUDA graphs; set sampler.name = \"anila\" or train.cuda_graphs = false")
    try:
        objective.check(model_name=model_name, chain_init=chains.init, is_points=data.is_points,
                        num_steps=train.num_steps)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if chains.init == "generator" and not objective.supplies_chain_starts:
        raise ConfigError("chains.init: \"generator\" means the objective supplies the chain starts, which only "
                          "objective.name = \"cooperative\" does; set chains.init = \"noise\" or another strategy")
    eval_ = _construct("eval", EvalConfig, _checked_kwargs("eval", EvalConfig, sections["eval"]))
    guard = _construct("guard", GuardSettings, _checked_kwargs("guard", GuardSettings, sections["guard"]))
    return Config(data=data, model=model, sampler=sampler, chains=chains, train=train, eval=eval_,
                  objective=objective, guard=guard, adaptation=adaptation)


def _check_model_fits(objective: ObjectiveSpec, model_name: str, data: DataConfig) -> None:
    """The model against the objective's declared ``models`` (:class:`~anila.objectives.base.ObjectiveSpec`): a
    noise-conditional objective and a noise-conditional model go together, and an objective that names its models
    (JEM: a class head) takes no other. Only the models that fit the data (points or images) are named."""
    name = objective_name(objective)
    kind = [m for m in objective.models or () if (m in POINT_MODELS) == data.is_points] or list(objective.models or ())
    if objective.noise_conditional and model_name not in (objective.models or ()):
        raise ConfigError(f"objective.name: {name} and model.name = {' or '.join(kind)} go together; use both or "
                          "neither")
    if objective.models is not None and model_name not in objective.models:
        raise ConfigError(f"model.name: {name} takes model.name = {' or '.join(kind)}; got {model_name!r}")
    if objective.models is None and model_name in NOISE_CONDITIONAL_MODELS:
        takers = [n for n, spec in OBJECTIVES.items() if model_name in (spec.models or ())]
        raise ConfigError(f"objective.name: {' or '.join(takers)} and model.name = {model_name} go together; use "
                          "both or neither")


def _sampler(values: dict[str, Any]) -> tuple[Any, DualAveraging | None]:
    """The ``[sampler]`` section: the registered sampler, and its step-size adaptation when ``adapt = true``."""
    registered = {n: entry.cls for n, entry in REGISTRY.items()}  # read now: a sampler registered at run time counts
    name, sampler_cls, sampler_values = _named("sampler", {"name": "anila", **values}, registered)
    adapt = sampler_values.pop("adapt", False)
    target = sampler_values.pop("target_accept", None)
    if not isinstance(adapt, bool):
        raise ConfigError(f"sampler.adapt: expected true or false, got {adapt!r}")
    sampler = _construct("sampler", sampler_cls, _checked_kwargs("sampler", sampler_cls, sampler_values))
    if not adapt:
        if target is not None:
            raise ConfigError("sampler.target_accept: applies with sampler.adapt = true")
        return sampler, None
    if not sampler.is_exact:
        raise ConfigError(f"sampler.adapt: step-size adaptation aims at an acceptance rate, which the unadjusted "
                          f"sampler {name} does not have; use a Metropolis sampler (mala, metropolis_anila, "
                          f"metropolis_psgld, hmc, parallel_tempering) or adapt = false")
    if target is None:
        target = REGISTRY[name].target_accept
    if isinstance(target, bool) or not isinstance(target, int | float):
        raise ConfigError(f"sampler.target_accept: expected a number in (0, 1), got {target!r}")
    return sampler, _construct("sampler", DualAveraging, {"target_accept": float(target)})


def parse_override(text: str) -> tuple[str, str, Any]:
    """``"section.key=value"`` -> ``(section, key, value)``; the value is read as TOML, else as a string."""
    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise ConfigError(f"--set {text!r}: expected section.key=value, e.g. --set train.lr=1e-3")
    dotted, raw_value = text.split("=", 1)
    section, key = dotted.strip().split(".", 1)
    try:
        value = tomllib.loads(f"v = {raw_value}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw_value.strip()
    return section, key, value


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read a TOML config, apply ``section.key=value`` overrides, validate and build it."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"config {path} is a folder; pass a TOML file (e.g. configs/demo_rings_anila.toml)") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    unknown = [key for key in raw if key not in SECTIONS and key != PRESET_KEY]  # preset = "...": a named recipe
    if unknown:  # a misspelt section is the likelier mistake than a missing one: name it first
        raise ConfigError(f"{unknown[0]}: unknown section; valid sections: {', '.join(SECTIONS)}")
    if "data" not in raw and not any(parse_override(t)[0] == "data" for t in overrides):
        raise ConfigError(f"{path} has no [data] section; a config names its data set, e.g. [data] name = "
                          "\"rings\" (every other section has defaults)")
    for text in overrides:
        section, key, value = parse_override(text)
        table = raw.setdefault(section, {})
        if not isinstance(table, dict):
            raise ConfigError(f"--set {text!r}: {section} is not a section")
        table[key] = value
    return config_from_dict(raw)
