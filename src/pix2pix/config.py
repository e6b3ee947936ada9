"""Frozen dataclasses: the one place where defaults live (the paper's, unless noted).

A `Config` is saved as JSON in every run folder and checkpoint, so a run folder alone rebuilds
its model. Files (YAML or JSON) and command-line overrides are merged onto these defaults.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .devices import check_device
from .options import (
    AMP_MODES,
    CPU_KERNELS,
    DATA_ON_DEVICE,
    DATASET_MODES,
    DIRECTIONS,
    GAN_MODES,
    HINT_REGIONS,
    LR_POLICIES,
    SWITCHES,
)

VAL_HINTS = 10  # validation also scores a hints model with this many simulated hints: val_h10_*
HINTED = f"h{VAL_HINTS}_"  # the prefix of those metrics
SELECT_METRICS = ("", "l1", "psnr", "ssim", "lpips", *(HINTED + m for m in ("l1", "psnr", "ssim")))


def _help(text: str) -> Any:
    return {"help": text}


@dataclass(frozen=True)
class ModelConfig:
    method: str = field(
        default="pix2pix", metadata=_help("model family: pix2pix (paired) or cyclegan (unpaired); --model on the CLI")
    )
    hints: bool = field(
        default=False,
        metadata=_help(
            "colour hints: the generator also takes a hint map (hint colours + a mask, output_nc + 1 channels)"
        ),
    )
    hint_fill: bool = field(
        default=False,
        metadata=_help(
            "hints: spread each hint over its closed region of the line art (a paint bucket) before the generator "
            "sees it; filled pixels get mask 0.5 (see hints.fill_regions)"
        ),
    )
    hint_blend: bool = field(
        default=False,
        metadata=_help(
            "hint_fill: a filled pixel takes its region's hint colours weighted by 1 / distance^2 instead of the "
            "nearest hint's colour"
        ),
    )
    hint_regions: str = field(
        default="closed",
        metadata=_help(
            "hint_fill: which regions a hint fills: closed (closed outlines not touching the border, as the emoji) or "
            "open "
            "(gaps up to 2 px closed, everything but the page: line art whose outlines do not close)"
        ),
    )
    generator: str = field(
        default="unet_256", metadata=_help("generator name (unet_N, resnet_6blocks, resnet_9blocks)")
    )
    discriminator: str = field(default="patch", metadata=_help("discriminator name (patch, pixel)"))
    ngf: int = field(default=64, metadata=_help("generator filters in the first layer"))
    ndf: int = field(default=64, metadata=_help("discriminator filters in the first layer"))
    n_layers_d: int = field(default=3, metadata=_help("PatchGAN depth; 3 gives 70x70 patches"))
    norm: str = field(default="batch", metadata=_help("batch, instance, syncbatch or none"))
    dropout: bool = field(default=True, metadata=_help("dropout 0.5 in the innermost decoder blocks"))
    init_type: str = field(default="normal", metadata=_help("normal, xavier, kaiming or orthogonal"))
    init_gain: float = field(default=0.02, metadata=_help("std / gain of the weight init"))
    input_nc: int = field(default=3, metadata=_help("channels of the input image"))
    output_nc: int = field(default=3, metadata=_help("channels of the output image"))

    def __post_init__(self) -> None:
        from .models import DISCRIMINATORS, GENERATORS
        from .models.layers import INIT_TYPES, NORMS

        if self.generator not in GENERATORS:
            raise ValueError(f"unknown generator {self.generator!r}; valid: {', '.join(GENERATORS.names())}")
        if self.discriminator not in DISCRIMINATORS:
            raise ValueError(
                f"unknown discriminator {self.discriminator!r}; valid: {', '.join(DISCRIMINATORS.names())}"
            )
        _check_choice("method", self.method, tuple(_families().names()))
        _check_choice("norm", self.norm, NORMS)
        _check_choice("init_type", self.init_type, INIT_TYPES)
        for name in ("ngf", "ndf", "n_layers_d", "input_nc", "output_nc"):
            _check_positive(name, getattr(self, name))
        if self.hints and self.method != "pix2pix":
            raise ValueError(f"hints are a pix2pix feature; method {self.method!r} does not take them")
        if self.hint_fill and not self.hints:
            raise ValueError("hint_fill spreads hints over regions: it needs hints (model.hints true)")
        _check_choice("hint_regions", self.hint_regions, HINT_REGIONS)
        if self.hint_regions != "closed" and not self.hint_fill:
            raise ValueError(
                f"hint_regions {self.hint_regions!r} is a way to fill regions: it needs hint_fill (model.hint_fill "
                "true)"
            )
        if self.hint_blend and not self.hint_fill:
            raise ValueError("hint_blend is a way to fill regions: it needs hint_fill (model.hint_fill true)")


@dataclass(frozen=True)
class DataConfig:
    root: str = field(default="", metadata=_help("dataset folder with train/ val/ test/ splits"))
    dataset_mode: str = field(
        default="aligned",
        metadata=_help(
            "aligned (A|B in one file), folders (A/ and B/ matched by name) or unpaired (A/ and B/ of any sizes)"
        ),
    )
    direction: str = field(default="AtoB", metadata=_help("AtoB or BtoA"))
    load_size: int = field(default=286, metadata=_help("resize images to this size before cropping"))
    crop_size: int = field(default=256, metadata=_help("random crop size for training, and the test size"))
    flip: bool = field(default=True, metadata=_help("random horizontal flips while training"))
    cache: bool = field(default=True, metadata=_help("decode and resize every image once, keep uint8 in memory"))
    num_workers: int = field(default=-1, metadata=_help("data-loading workers when not cached; -1 picks by machine"))
    data_on_device: str = field(
        default="auto",
        metadata=_help(
            "cached data on a GPU: auto (on the GPU when it fits in a quarter of its free memory, else pinned "
            "host memory), yes, or no (pinned host memory)"
        ),
    )

    def __post_init__(self) -> None:
        _check_choice("dataset_mode", self.dataset_mode, DATASET_MODES)
        _check_choice("data_on_device", self.data_on_device, DATA_ON_DEVICE)
        _check_choice("direction", self.direction, DIRECTIONS)
        _check_positive("load_size", self.load_size)
        _check_positive("crop_size", self.crop_size)
        if self.crop_size > self.load_size:
            raise ValueError(f"crop_size {self.crop_size} is larger than load_size {self.load_size}")


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = field(default=1, metadata=_help("global batch: images per optimizer step over all ranks"))
    grad_accum: int = field(
        default=1, metadata=_help("split each step into K micro-batches (same global batch, less memory)")
    )
    n_epochs: int = field(default=100, metadata=_help("epochs at the initial learning rate"))
    n_epochs_decay: int = field(default=100, metadata=_help("epochs over which the learning rate decays"))
    max_steps: int = field(default=0, metadata=_help("total steps; 0 derives them from the epochs"))
    lr: float = field(default=2e-4, metadata=_help("Adam learning rate"))
    beta1: float = field(default=0.5, metadata=_help("Adam beta1"))
    beta2: float = field(default=0.999, metadata=_help("Adam beta2"))
    lr_policy: str = field(default="linear", metadata=_help("linear, step or cosine decay after the constant phase"))
    gan_mode: str = field(default="vanilla", metadata=_help("vanilla, lsgan, hinge or wgan-gp"))
    lambda_l1: float = field(default=100.0, metadata=_help("weight of the L1 term"))
    lambda_ssim: float = field(
        default=0.0, metadata=_help("weight of a (1 - SSIM) term (Zhao et al. 2017); 0 is off, as in the paper")
    )
    lambda_gp: float = field(default=10.0, metadata=_help("gradient-penalty weight for wgan-gp"))
    # CycleGAN (Zhu et al. 2017); the reference's defaults.
    lambda_cycle_a: float = field(default=10.0, metadata=_help("cyclegan: weight of the A -> B -> A cycle loss"))
    lambda_cycle_b: float = field(default=10.0, metadata=_help("cyclegan: weight of the B -> A -> B cycle loss"))
    lambda_identity: float = field(
        default=0.5,
        metadata=_help("cyclegan: identity loss, as a fraction of the cycle weights (G_AB(b) ~ b); 0 is off"),
    )
    pool_size: int = field(
        default=50, metadata=_help("cyclegan: fakes kept per discriminator (Shrivastava et al.); 0 is off")
    )
    # Colour hints (model.hints): the hints simulated while training. Zhang et al. 2017 ("Real-Time
    # User-Guided Image Colorization with Learned Deep Priors") reveal a geometric number of square
    # patches (p = 1/8: no hints 1/8 of the time, 7 on average), 1 to 9 px wide, each filled with its
    # mean colour in the target; these defaults are theirs. Positions here favour pixels worth a hint
    # (not background, not line): see hints.py.
    hint_p_none: float = field(default=0.125, metadata=_help("hints: probability that an image gets no hints"))
    hint_p: float = field(
        default=0.125, metadata=_help("hints: otherwise the count is 1 + geometric(hint_p): mean 1 / hint_p")
    )
    hint_max: int = field(default=32, metadata=_help("hints: at most this many hints per image"))
    hint_size_min: int = field(default=1, metadata=_help("hints: smallest patch side in pixels"))
    hint_size_max: int = field(default=9, metadata=_help("hints: largest patch side in pixels"))
    hint_strokes: float = field(
        default=0.0,
        metadata=_help(
            "hints: share of simulated hints drawn as a stroke (a row of 5 patches, one side apart, kept inside one "
            "colour area) instead of one patch, as people hint with a brush; 0 is off (the paper's patches)"
        ),
    )
    hint_blobs: float = field(
        default=0.0,
        metadata=_help(
            "hints: share of simulated hints drawn as a blob (a cross of 5 patches, one side apart, kept inside one "
            "colour area); 0 is off"
        ),
    )
    hint_jitter: float = field(
        default=0.0,
        metadata=_help(
            "hints: share of training images whose target (and so its hints) gets a random hue rotation and saturation "
            "change, so the colours cannot be guessed from the shapes alone and the model learns to follow the hints; "
            "0 is off"
        ),
    )
    ema_decay: float = field(
        default=0.0, metadata=_help("keep an EMA of the generator weights (e.g. 0.999); 0 is off, as in the paper")
    )
    seed: int = field(default=0, metadata=_help("seed for weights, data order, crops and dropout"))
    init_from: str = field(
        default="",
        metadata=_help(
            "start from a trained run's weights (RUN or a checkpoint folder; the run's best checkpoint where it has "
            "one): "
            "new data, steps and lr, fresh optimizers and schedule; its generator must match this one"
        ),
    )
    save_every: int = field(default=5000, metadata=_help("checkpoint every N steps (and at the end)"))
    log_every: int = field(default=100, metadata=_help("read losses back every N steps"))
    device: str = field(
        default="auto", metadata=_help("auto (CUDA, then Apple's MPS, then the CPU), cpu, cuda, cuda:N or mps")
    )
    amp: str = field(
        default="auto",
        metadata=_help(
            "mixed precision: auto (bf16 on CUDA; on CPUs with native bf16 where it measures faster, else off), off, "
            "bf16 or fp16"
        ),
    )
    channels_last: str = field(default="auto", metadata=_help("auto (on for CUDA), on or off"))
    compile: bool = field(default=False, metadata=_help("torch.compile the generator and discriminator"))
    cpu_kernels: str = field(
        default="timed",
        metadata=_help(
            "CPU training: timed (time oneDNN against GEMM per layer shape at the start, cached per CPU) or rule"
        ),
    )
    val_every: int = field(default=1000, metadata=_help("validate on the val split every N steps (0: never)"))
    sample_every: int = field(
        default=500, metadata=_help("log input|output|target grids of val images every N steps (0: never)")
    )
    n_samples: int = field(default=8, metadata=_help("val images in the sample grid"))
    select_by: str = field(
        default="",
        metadata=_help(
            f"keep checkpoints/best by this val metric: l1, psnr, ssim or lpips; {HINTED}l1, {HINTED}psnr or "
            f"{HINTED}ssim: "
            f"with {VAL_HINTS} hints"
        ),
    )
    tensorboard: bool = field(default=True, metadata=_help("write TensorBoard events to RUN_DIR/tensorboard"))
    html: bool = field(default=True, metadata=_help("keep a self-refreshing page in RUN_DIR/live/index.html"))

    def __post_init__(self) -> None:
        _check_choice("lr_policy", self.lr_policy, LR_POLICIES)
        _check_choice("gan_mode", self.gan_mode, GAN_MODES)
        check_device(self.device)
        for name in ("batch_size", "grad_accum", "save_every", "log_every"):
            _check_positive(name, getattr(self, name))
        for name in ("n_epochs", "n_epochs_decay", "max_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.max_steps == 0 and self.n_epochs + self.n_epochs_decay == 0:
            raise ValueError("n_epochs + n_epochs_decay is 0 and max_steps is 0: nothing to train")
        _check_choice("select_by", self.select_by, SELECT_METRICS)
        _check_choice("amp", self.amp, AMP_MODES)
        _check_choice("channels_last", self.channels_last, SWITCHES)
        _check_choice("cpu_kernels", self.cpu_kernels, CPU_KERNELS)
        if self.batch_size % self.grad_accum:
            raise ValueError(f"batch_size {self.batch_size} is not divisible by grad_accum {self.grad_accum}")
        if self.amp == "fp16" and self.gan_mode == "wgan-gp":
            raise ValueError(
                "amp 'fp16' with gan_mode 'wgan-gp' is not supported (the penalty's double backward "
                "under a loss scaler); use amp 'bf16'"
            )
        for name in ("val_every", "sample_every", "n_samples"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.select_by and self.val_every == 0:
            raise ValueError(f"select_by {self.select_by!r} needs validation: set val_every > 0")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        for name in ("lambda_l1", "lambda_ssim", "lambda_gp", "lambda_cycle_a", "lambda_cycle_b", "lambda_identity"):
            if not (getattr(self, name) >= 0 and math.isfinite(getattr(self, name))):
                raise ValueError(f"{name} must be a number >= 0, got {getattr(self, name)}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number, got {self.lr}")
        if self.pool_size < 0:
            raise ValueError(f"pool_size must be >= 0, got {self.pool_size}")
        for name in ("hint_p_none", "hint_p"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {getattr(self, name)}")
        if self.hint_p == 0:
            raise ValueError("hint_p must be above 0 (the mean hint count is 1 / hint_p)")
        if self.hint_max < 0:
            raise ValueError(f"hint_max must be >= 0, got {self.hint_max}")
        for name in ("hint_size_min", "hint_size_max"):
            _check_positive(name, getattr(self, name))
        for name in ("hint_jitter", "hint_strokes", "hint_blobs"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a share in [0, 1], got {getattr(self, name)}")
        if self.hint_strokes + self.hint_blobs > 1.0:
            raise ValueError(
                f"hint_strokes {self.hint_strokes} + hint_blobs {self.hint_blobs} is more than every hint (1.0)"
            )
        if self.hint_size_min > self.hint_size_max:
            raise ValueError(f"hint_size_min {self.hint_size_min} is larger than hint_size_max {self.hint_size_max}")


SECTIONS = {"model": ModelConfig, "data": DataConfig, "train": TrainConfig}


@dataclass(frozen=True)
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        from .models.generators import size_multiple

        if (
            self.model.method == "cyclegan"
            and self.train.lambda_identity
            and self.model.input_nc != self.model.output_nc
        ):
            raise ValueError(
                f"lambda_identity {self.train.lambda_identity} needs input_nc == output_nc (got {self.model.input_nc} "
                f"and {self.model.output_nc}); set lambda_identity 0"
            )
        if (self.data.dataset_mode == "unpaired") != (self.model.method == "cyclegan"):
            raise ValueError(
                f"dataset_mode {self.data.dataset_mode!r} does not fit method {self.model.method!r}: "
                "unpaired data trains cyclegan, paired data (aligned, folders) trains pix2pix"
            )
        if self.train.select_by.startswith(HINTED) and not self.model.hints:
            raise ValueError(
                f"select_by {self.train.select_by!r} scores with 10 hints: it needs a hints model (model.hints true)"
            )
        if self.train.hint_jitter and not self.model.hints:
            raise ValueError("hint_jitter changes the colours hints are drawn from: it needs hints (model.hints true)")
        if (self.train.hint_strokes or self.train.hint_blobs) and not self.model.hints:
            raise ValueError("hint_strokes and hint_blobs shape simulated hints: they need hints (model.hints true)")
        multiple = size_multiple(self.model.generator)
        if self.data.crop_size % multiple:
            raise ValueError(
                f"crop_size {self.data.crop_size} does not fit generator {self.model.generator!r}: "
                f"it needs a multiple of {multiple}"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def for_method(cls, method: str = "pix2pix") -> Config:
        """The defaults of one model family (its `defaults`, networks.py, over the dataclass defaults)."""
        _check_choice("method", method, tuple(_families().names()))
        return (
            apply_overrides(cls(), {"method": method, **_families().get(method).defaults})
            if method != "pix2pix"
            else cls()
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Config:
        """Build from a nested ({'model': {...}}) or flat ({'ngf': 32}) mapping; unknown keys fail."""
        return build_config(data)

    def save(self, path: str | Path) -> None:
        from .io import atomic_write_text

        atomic_write_text(Path(path), json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> Config:
        return cls.from_dict(read_config_file(path))


def field_index() -> dict[str, tuple[str, dataclasses.Field]]:
    """Every config field by its flat name: {'ngf': ('model', Field), ...}. Names are unique."""
    index: dict[str, tuple[str, dataclasses.Field]] = {}
    for section, klass in SECTIONS.items():
        for f in fields(klass):
            index[f.name] = (section, f)
    return index


def _coerce(name: str, f: dataclasses.Field, value: Any) -> Any:
    kind = f.type if isinstance(f.type, type) else {"int": int, "float": float, "bool": bool, "str": str}[str(f.type)]
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return value.lower() in ("1", "true", "yes", "on")
        raise ValueError(f"{name} must be true or false, got {value!r}")
    if kind is float and isinstance(value, (int, float, str)) and not isinstance(value, bool):
        try:
            return float(value)
        except ValueError:
            raise ValueError(f"{name} must be a number, got {value!r}") from None
    if kind is int and not isinstance(value, bool):
        try:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be an integer, got {value!r}") from None
    if kind is str:
        return str(value)
    raise ValueError(f"{name} has the wrong type: {value!r}")


def apply_overrides(config: Config, overrides: Mapping[str, Any]) -> Config:
    """Return a new Config with values replaced. Keys are flat ('lr'), dotted ('train.lr') or
    nested sections ({'train': {'lr': ...}}). An unknown key raises a ValueError naming it."""
    index = field_index()
    changes: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    for key, value in overrides.items():
        if key in SECTIONS and isinstance(value, Mapping):
            for sub, subval in value.items():
                if sub not in {f.name for f in fields(SECTIONS[key])}:
                    raise ValueError(f"unknown config key {key}.{sub}")
                changes[key][sub] = _coerce(f"{key}.{sub}", index[sub][1], subval)
            continue
        name = key.split(".", 1)[1] if "." in key else key
        if name not in index or ("." in key and key.split(".", 1)[0] != index[name][0]):
            raise ValueError(f"unknown config key {key!r}; valid: {', '.join(sorted(index))}")
        section, f = index[name]
        changes[section][name] = _coerce(name, f, value)
    sections = {
        s: dataclasses.replace(getattr(config, s), **changes[s]) if changes[s] else getattr(config, s) for s in SECTIONS
    }
    return Config(**sections)


def method_in(layer: Mapping[str, Any]) -> str | None:
    """The model family a layer of overrides names ('method', 'model.method' or nested), if any."""
    nested = layer.get("model")
    if isinstance(nested, Mapping) and "method" in nested:
        return str(nested["method"])
    for key in ("method", "model.method"):
        if key in layer:
            return str(layer[key])
    return None


def build_config(*layers: Mapping[str, Any]) -> Config:
    """Defaults, then the named family's defaults, then each layer of overrides in turn.

    The family comes from the last layer that names one, so `--model cyclegan` on the command
    line brings CycleGAN's defaults in under a config file's values.
    """
    methods = [m for m in map(method_in, layers) if m is not None]
    config = Config.for_method(methods[-1] if methods else "pix2pix")
    for layer in layers:
        config = apply_overrides(config, layer)
    return config


def packaged_configs() -> dict[str, Path]:
    """The configs the package ships (src/pix2pix/configs, also `configs/` in a checkout), by name."""
    folder = Path(__file__).resolve().parent / "configs"
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))}


def config_path(path: str | Path) -> Path:
    """A config file's path: `path` where it is a file, else the packaged config of that name (`own_art_128`),
    so a command naming one works from any folder."""
    given = Path(path)
    if given.is_file():
        return given
    shipped = packaged_configs()
    name = given.name.removesuffix(given.suffix) if given.suffix in (".yaml", ".yml") else given.name
    if name in shipped and (given.parent == Path(".") or given.parent.name == "configs"):
        return shipped[name]
    raise FileNotFoundError(f"config file not found: {path} (packaged configs: {', '.join(shipped)})")


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML or JSON config file into a mapping (a path, or a packaged config's name: `config_path`)."""
    path = config_path(path)
    text = path.read_text()
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            data = json.loads(text)
    except Exception as err:  # yaml and json raise different types; both mean a malformed file
        raise ValueError(f"{path}: not a valid config file ({err})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a config file must hold a mapping, got {type(data).__name__}")
    return data


def _families() -> Any:
    """The model families' registry (networks.py), imported when first needed: it builds models."""
    from .networks import FAMILIES

    return FAMILIES


def _check_choice(name: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ValueError(f"unknown {name} {value!r}; valid: {', '.join(valid)}")


def _check_positive(name: str, value: int) -> None:
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
