"""Training settings: every default in one place, with the reason beside it.

Precedence is defaults -> TOML file (`load_config`) -> CLI flags (`config.replace(**flags)`). The
resolved config is saved in each run folder as config.json (`to_dict`/`from_dict` round-trip), so a
run can be resumed or reproduced from its folder alone.

A TOML file holds top-level keys and an optional `[augment]` table, e.g.::

    epochs = 40
    imbalance = "balanced_sampling"
    [augment]
    rotation = 30.0
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skinpamper.data.load import FORMATS
from skinpamper.errors import ConfigError
from skinpamper.imaging import FITS

IMBALANCE = ("class_weight", "logit_adjust", "balanced_sampling", "oversample", "none")
SCHEDULES = ("cosine", "constant")
PRECISIONS = ("auto", "float32", "bfloat16", "float16")
XLA = ("auto", "on", "off")
# `skinpamper train` trains this many runs on one split and averages their probabilities (an ensemble;
# training.ensemble). Measured on the same external set (28 px, seed 0, no colour constancy): three
# members 0.554 balanced accuracy (0.564 with TTA, macro AUC 0.906) against 0.513 for one, the largest
# gain of anything tried; on HAM10000's held-out lesions 0.660 against 0.676, within one seed's noise
# (0.65 ± 0.01 over three splits). Three members take about 12 minutes on 2 AMX cores in bf16.
MEMBERS = 3
# A model's own defaults, applied over the ones in TrainConfig when it is chosen; a TOML file and flags
# still override them (resolve_config). Pretrained EfficientNet-Lite fine-tunes at 128 px: HAM10000's
# shared JPEGs are 200x150, so 128 px is the largest square that never upsamples them (160 and 192
# would invent detail); larger photos (the originals are 600x450) suit 192-260 px. The head learns
# for one epoch, then the network for seven more (issue #22's first measured recipe ran 8 epochs);
# flips, 90-degree turns, some zoom and colour jitter suit dermoscopy at this size.
_FINETUNE = {
    "image_size": 128,
    "epochs": 8,
    "learning_rate": 1e-3,
    "frozen_stages": 3,
    "augment": {"zoom": 0.1, "brightness": 0.1, "contrast": 0.1, "saturation": 0.1},
}
# What `skinpamper train` and `skinpamper.train` fit when no model is named (resolve_config): measured
# with benchmarks/accuracy.py on 3 lesion-grouped splits of HAM10000 (2,004 held-out images each), one
# ImageNet-pretrained EfficientNet-Lite0 at 128 px scored 0.692 ± 0.015 balanced accuracy (AUC 0.943)
# against 0.650 ± 0.008 for three averaged compact_cnn at 28 px, the default before, in 12-16 minutes on
# 2 busy cores. `--model compact_cnn` brings the 28 px recipe back whole (its defaults are TrainConfig's).
DEFAULT_MODEL = "efficientnet_lite0"
# One pretrained model is the unit: issue #22 measured one Lite0 matching three scratch compact_cnn models
# on held-out lesions and beating them on other clinics' images, at a third of an ensemble's time.
PRETRAINED_MEMBERS = 1
MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    "efficientnet_lite0": _FINETUNE,
    "efficientnet_lite1": _FINETUNE,
    "efficientnet_lite2": _FINETUNE,
}


@dataclass(frozen=True)
class AugmentConfig:
    """Training-only augmentation; images stay float 0..255 and are clipped back into that range."""

    enabled: bool = True  # HAM10000 has ~7k training images; without augmentation the CNN overfits early
    flip: bool = True  # a lesion has no left/right or top/bottom
    rot90: bool = True  # dermoscopy has no "up"; with flips this draws all 8 square symmetries
    # Measured (benchmarks/accuracy.py, seed CNN, 28 px, 25 epochs, class weights, seed 0): test balanced
    # accuracy 0.634 with the square symmetries alone, 0.621 adding colour jitter, 0.602 adding
    # rotation/zoom/shift too; at 28 px resampling blurs the few pixels there are. So the rest is off by
    # default; the values in comments are common choices for larger images (not measured here).
    rotation: float = 0.0  # degrees either way on top of rot90 (e.g. 15)
    zoom: float = 0.0  # scale in [1 - zoom, 1 + zoom] (e.g. 0.1): lesion size varies with distance
    translate: float = 0.0  # fraction of the side (e.g. 0.05): lesions are roughly, not exactly, centred
    brightness: float = 0.0  # multiply by [1 - b, 1 + b] (e.g. 0.1): illumination differs between devices
    contrast: float = 0.0  # stretch around the image mean (e.g. 0.1)
    saturation: float = 0.0  # scale colour away from grey (e.g. 0.1): camera colour response differs
    channel_gain: float = 0.0  # scale each of R, G, B by its own [1 - g, 1 + g] (e.g. 0.2): white balance

    def __post_init__(self) -> None:
        if not 0 <= self.rotation <= 180:
            raise ConfigError(f"augment.rotation must be 0..180 degrees, got {self.rotation}")
        for name in ("zoom", "translate", "brightness", "contrast", "saturation", "channel_gain"):
            value = getattr(self, name)
            if not 0 <= value < 1:
                raise ConfigError(f"augment.{name} must be in [0, 1), got {value}")


@dataclass(frozen=True)
class TrainConfig:
    """Everything `train` needs besides the data itself."""

    data_path: str | None = None  # where the dataset was read from; recorded so a run can be resumed
    data_path_given: str | None = None  # data_path as typed (maybe relative); config.json's is absolute
    data_format: str = "auto"  # detect the HAM10000 form from the path (see skinpamper.data.load)
    # Measured (benchmarks/accuracy.py, 28 px, same training, 3 seeds): test balanced accuracy 0.640 ± 0.026
    # against 0.605 ± 0.025 for the original's CNN ("seed"), better on every split, at 40% of its FLOPs.
    # The 28 px recipe's model; front ends start from DEFAULT_MODEL (above) unless a model is named.
    model: str = "compact_cnn"  # "seed" is the original notebook's CNN, kept as the baseline
    image_size: int = 28  # the original's input size (hmnist_28_28_RGB.csv)
    pretrained: bool = True  # start keras.applications backbones from ImageNet weights (ignored by others)
    # Off by default, by measurement on real images from other clinics (1,512 images of the ISIC 2018
    # Task 3 test set, held outside this repository; compact_cnn, 28 px, seed 0): 0.516 balanced accuracy
    # with the shades-of-grey layer against 0.513 without, so it bought nothing there, while it cost
    # 0.066 on HAM10000's own held-out lesions (0.610 against 0.676). It does hold up under simulated
    # per-channel colour gains (benchmarks/colour_shift.py: 0.59 against 0.43 at ±20%), which is why the
    # option stays; a simulation alone is not enough to make it the default.
    colour_constancy: bool = False  # shades-of-grey layer in front of the model (skinpamper.models.colour)
    width: float = 1.0  # channel multiplier for models that take one (compact_cnn); others need 1.0
    fit: str = "squash"  # how 600x450 photos become square; squash is what hmnist did
    epochs: int = 25  # as the original
    batch_size: int = 64  # small enough for CPU training, large enough for stable BatchNorm statistics
    learning_rate: float = 1e-3  # Adam's default, as the original
    schedule: str = "cosine"  # decays to 0 by the last epoch; no plateau heuristics to tune
    warmup_epochs: float = 1.0  # linear warm-up keeps Adam's first, badly-estimated steps small
    weight_decay: float = 0.0  # the original used none; decoupled (AdamW-style) when > 0
    # Measured at 28 px, seed 0: class weights bal. acc 0.634 / acc 0.617 / AUC 0.920, balanced sampling
    # 0.632 / 0.570 / 0.912; same mean recall, fewer needless false alarms on nv with weights. logit_adjust,
    # compact_cnn, 3 members x 3 splits: 0.646 / 0.694 / 0.932 against 0.650 / 0.667 / 0.928 (df recall
    # 0.49 against 0.58): more accurate overall, no better on the mean recall that this tool ranks by.
    imbalance: str = "class_weight"  # nv is 67% of the images; weighting the loss evens the classes out
    # Early stopping (patience > 0) counts epochs without a better val balanced accuracy, in the second
    # half of the schedule only (early epochs swing with the high learning rate). Off by default: with
    # cosine decay to zero the last epochs are the best-annealed, so a stop saves a few epochs at most
    # and rests on a noisy score (1,000 validation images). Patience 8 stopped 3 of ~28 runs at 28 px;
    # the one rerun to its end kept the same best epoch, so no gain was measured either way.
    patience: int = 0  # 0 never stops; the best epoch is kept either way
    val_fraction: float = 0.1  # ~1,000 images: enough to rank epochs, small enough to keep training data
    test_fraction: float = 0.2  # ~2,000 images: enough for per-class recall of the rare classes
    # "auto" (training.precision.resolve_precision): mixed bfloat16 on CPUs with native bf16 and on
    # Ampere-or-newer GPUs, float16 with loss scaling on older GPUs, else float32. On these 2 AMX cores
    # bf16 trains the seed CNN 1.7x faster (724 against 427 images/s, benchmarks/train_speed.py) for
    # the same accuracy: compact_cnn, 28 px, seeds 0 and 1, held-out balanced accuracy 0.625/0.593
    # against 0.652/0.568 in float32 (mean 0.609 against 0.610), and 0.657 against 0.654 for seed 0's
    # last epochs, where the gap of its best epochs (0.027) came from picking the epoch on 1,000
    # validation images, not from precision. (An older one-seed 0.621 against 0.676 was that noise too.)
    precision: str = "auto"  # or "float32" / "bfloat16" / "float16"; saved models are float32 either way
    # XLA compilation (training.precision.resolve_jit_compile): "auto" is off on CPUs, where it was
    # measured 2.7x slower, and Keras's own choice on GPUs.
    xla: str = "auto"  # or "on" / "off"
    # batch_size stays the global batch on several devices: each gets batch_size / devices images a
    # step and the learning rate means what it does on one (training.devices).
    devices: int = 1  # one machine's devices trained on together (MirroredStrategy); 1 is Keras's choice
    seed: int = 0  # one seed for split, initial weights, shuffling and augmentation
    split_seed: int | None = None  # the split's own seed when set: ensemble members share a split
    # Abstention (skinpamper.scoring.abstention), fitted on the validation split when training ends.
    # 95% kept is the usual operating point of OOD detectors (FPR at 95% TPR): 1 in 20 unusual but real
    # lesion images is refused, in exchange for refusing portraits, screenshots and noise.
    ood_keep: float = 0.95  # share of validation images the out-of-distribution threshold accepts
    # "uncertain" below the confidence at which validation balanced accuracy reaches this level: 28 px
    # models score about 0.65 on everything, and keeping the ~70% they are surest of reaches 0.70.
    abstention_target: float = 0.70  # validation balanced accuracy of the images answered "ok"
    # Balanced accuracy alone let a second clinic's melanomas through as "ok" (docs/trust.md).
    ok_mel_sensitivity: float = 0.65  # of the validation images answered "ok": Lite0 keeps 67% of them
    mel_rule_out_sensitivity: float = 0.90  # of validation melanomas at or above the rule-out cut
    # The dermoscopy detector (scoring.dermoscopy) refuses above the log-odds that accept this share of
    # validation dermoscopy, plain and under simulated clinic shifts: 1 in 100, not 1 in 20, since a
    # refusal now means "not dermoscopy" and unfamiliar dermoscopy is answered (status unfamiliar).
    dermoscopy_keep: float = 0.99  # shifted dermoscopy refused: 0.4-2.4% per shift (docs/trust.md)
    # Fine-tuning a pretrained backbone (training.finetune); models trained from scratch ignore these.
    head_epochs: float = 1.0  # the new head learns alone first: a random head would wreck pretrained weights
    # The backbone then learns at half the head's rate: 5e-4 under the recipe's 1e-3, the rate at which
    # a first untuned EfficientNet-Lite0 run (issue #22) matched three scratch models at 128 px.
    backbone_lr_scale: float = 0.5  # of learning_rate, for every layer outside the head
    frozen_stages: int = 0  # the stem and this many more stages of the backbone never train (0: none)
    augment: AugmentConfig = field(default_factory=AugmentConfig)  # a TOML file's [augment] table

    def __post_init__(self) -> None:
        _check_choice("data_format", self.data_format, FORMATS)
        _check_choice("fit", self.fit, FITS)
        _check_choice("schedule", self.schedule, SCHEDULES)
        _check_choice("imbalance", self.imbalance, IMBALANCE)
        _check_choice("precision", self.precision, PRECISIONS)
        _check_choice("xla", self.xla, XLA)
        for name in ("image_size", "epochs", "batch_size", "devices"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.batch_size % self.devices:
            raise ConfigError(
                f"batch_size {self.batch_size} does not split evenly over {self.devices} devices; "
                f"choose a multiple of {self.devices}"
            )
        if not 0.1 <= self.width <= 8:
            raise ConfigError(f"width must be between 0.1 and 8, got {self.width}")
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise ConfigError(f"learning_rate must be a positive number, got {self.learning_rate}")
        for name in ("warmup_epochs", "weight_decay", "patience", "head_epochs", "frozen_stages"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must not be negative, got {getattr(self, name)}")
        if not 0 <= self.backbone_lr_scale <= 1:
            raise ConfigError(f"backbone_lr_scale must be in [0, 1], got {self.backbone_lr_scale}")
        if not 0.5 <= self.ood_keep < 1:
            raise ConfigError(f"ood_keep must be in [0.5, 1), got {self.ood_keep}")
        for name in ("abstention_target", "ok_mel_sensitivity", "mel_rule_out_sensitivity"):
            if not 0 < getattr(self, name) <= 1:
                raise ConfigError(f"{name} must be in (0, 1], got {getattr(self, name)}")
        if not 0.5 <= self.dermoscopy_keep < 1:
            raise ConfigError(f"dermoscopy_keep must be in [0.5, 1), got {self.dermoscopy_keep}")
        v, t = self.val_fraction, self.test_fraction
        if not (0 < v < 1 and 0 < t < 1 and v + t < 1):
            raise ConfigError(f"val_fraction={v} and test_fraction={t} must be in (0, 1) and sum below 1")

    @property
    def effective_split_seed(self) -> int:
        """The seed the lesion-grouped split is drawn with."""
        return self.seed if self.split_seed is None else self.split_seed

    def replace(self, **overrides: Any) -> TrainConfig:
        """A copy with `overrides` applied; None values are skipped (CLI flags left unset).

        Augmentation settings are given as `augment={"rotation": 30.0}` or `**{"augment.rotation": 30.0}`.
        """
        data = self.to_dict()
        for key, value in overrides.items():
            if value is None:
                continue
            if isinstance(value, AugmentConfig):
                value = dataclasses.asdict(value)
            if key == "augment" and isinstance(value, dict):
                data["augment"].update(value)
            elif key.startswith("augment."):
                data["augment"][key.removeprefix("augment.")] = value
            else:
                data[key] = value
        return TrainConfig.from_dict(data, source="options")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values, with augmentation as a nested dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> TrainConfig:
        """Build from `to_dict` output or a parsed TOML file; `source` names the origin in errors."""
        try:
            augment = _build(AugmentConfig, data.get("augment", {}), source, "augment.")
            top = {k: v for k, v in data.items() if k != "augment"}
            return _build(cls, {**top, "augment": augment}, source, "")
        except ConfigError as exc:
            message = str(exc)
            raise ConfigError(message if message.startswith(source) else f"{source}: {message}") from None


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


_KINDS = {bool: "true or false", int: "an integer", float: "a finite number", str: "a string"}
_OPTIONAL = {"data_path": str, "data_path_given": str, "split_seed": int}  # default None; their type


def _coerce(name: str, value: Any, default: Any, source: str) -> Any:
    """Check a value against its field's default type; ints are accepted where floats are expected."""
    expected = type(default)
    if default is None:  # optional fields: their type or nothing
        expected = _OPTIONAL[name.split(".")[-1]]
        ok = value is None or (isinstance(value, expected) and not isinstance(value, bool))
    elif expected is float:  # TOML and JSON both spell nan and inf: refused, never silently compared
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        value = float(value) if ok else value
    elif expected is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, expected)
    if not ok:
        kind = _KINDS.get(expected, "a string")
        raise ConfigError(f"{source}: {name} must be {kind}, got {value!r}")
    return value


def _build(cls: type, data: Any, source: str, prefix: str) -> Any:
    """Instantiate dataclass `cls` from a mapping, rejecting unknown keys and mistyped values."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: {prefix.rstrip('.')} must be a table, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        valid = ", ".join(prefix + name for name in fields)
        raise ConfigError(f"{source}: unknown key {prefix + unknown[0]!r}; valid keys: {valid}")
    values = {}
    for name, value in data.items():
        spec = fields[name]
        if isinstance(value, AugmentConfig):
            values[name] = value
            continue
        default = spec.default if spec.default is not dataclasses.MISSING else spec.default_factory()
        values[name] = _coerce(prefix + name, value, default, source)
    return cls(**values)


def default_members(model: str) -> int:
    """How many runs `skinpamper train` averages for `model` unless told: MEMBERS, or one pretrained."""
    return PRETRAINED_MEMBERS if model in MODEL_DEFAULTS else MEMBERS


def resolve_config(path: str | Path | None = None, **settings: Any) -> TrainConfig:
    """The defaults, then the chosen model's own (MODEL_DEFAULTS), then a TOML file, then `settings`
    (None values skipped): what `skinpamper train` and `skinpamper.train` both use. The model is
    `settings`' or the file's, else DEFAULT_MODEL."""
    model = settings.get("model") or (path and _model_in(path)) or DEFAULT_MODEL
    base = TrainConfig(model=model).replace(**MODEL_DEFAULTS.get(model, {}))
    return (load_config(path, base) if path else base).replace(**settings)


def _model_in(path: str | Path) -> str | None:
    """The model a TOML file names, if any; a file that cannot be read is left to load_config's error."""
    try:
        model = tomllib.loads(Path(path).expanduser().read_text(encoding="utf-8")).get("model")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    return model if isinstance(model, str) else None


def load_config(path: str | Path, base: TrainConfig | None = None) -> TrainConfig:
    """Read a TOML file over `base` (the defaults); unknown keys raise ConfigError naming key and file."""
    path = Path(path).expanduser()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    merged = (base or TrainConfig()).to_dict()
    augment = data.pop("augment", {})
    if not isinstance(augment, dict):
        raise ConfigError(f"{path}: augment must be a table ([augment]), got {augment!r}")
    merged.update(data)
    merged["augment"] = {**merged["augment"], **augment}
    return TrainConfig.from_dict(merged, source=str(path))
