"""Training settings: every default in one place, with the reason beside it.

Precedence is defaults -> TOML file (`load_config`) -> CLI flags (`config.replace(**flags)`). The
resolved config is saved in each run folder as config.json (`to_dict`/`from_dict` round-trip), so a
run can be resumed or reproduced from its folder alone.

Each field declares its type and range, and pydantic checks them: a value of the wrong type (a string
for a number, 1 for a flag, a flag for a number), out of range or not finite, a choice not on the
list, or an unknown key is a ConfigError naming the file and the field (`errors.describe`). Ints are
taken where a float belongs. The measurements behind the defaults are in docs/training.md.

A TOML file holds top-level keys and an optional `[augment]` table, e.g.::

    epochs = 40
    imbalance = "balanced_sampling"
    [augment]
    rotation = 30.0
"""

from __future__ import annotations

import dataclasses
import functools
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, dataclass_transform, get_args

from pydantic import (
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic.dataclasses import dataclass

from skinpamper.data.load import Format
from skinpamper.errors import ConfigError, describe
from skinpamper.imaging import Fit

Imbalance = Literal["class_weight", "logit_adjust", "balanced_sampling", "oversample", "none"]
Schedule = Literal["cosine", "constant"]
Precision = Literal["auto", "float32", "bfloat16", "float16"]
Xla = Literal["auto", "on", "off"]
# The choices as tuples, for the CLI's options: taken from the types, so the two cannot disagree.
IMBALANCE: tuple[str, ...] = get_args(Imbalance)
SCHEDULES: tuple[str, ...] = get_args(Schedule)
PRECISIONS: tuple[str, ...] = get_args(Precision)
XLA: tuple[str, ...] = get_args(Xla)

# What each field accepts, named once (the API reference lists them). Strict types: a flag is not a
# number, nor a number a flag; an int is taken where a float belongs.
Positive = Annotated[StrictInt, Field(ge=1)]
Count = Annotated[StrictInt, Field(ge=0)]
NonNegative = Annotated[StrictFloat, Field(ge=0)]
Fraction = Annotated[StrictFloat, Field(gt=0, lt=1)]
Share = Annotated[StrictFloat, Field(gt=0, le=1)]
Jitter = Annotated[StrictFloat, Field(ge=0, lt=1)]
Unit = Annotated[StrictFloat, Field(ge=0, le=1)]
Keep = Annotated[StrictFloat, Field(ge=0.5, lt=1)]  # a threshold's share of validation images accepted
Degrees = Annotated[StrictFloat, Field(ge=0, le=180)]
Multiplier = Annotated[StrictFloat, Field(ge=0.1, le=8)]
# TOML and JSON both spell nan and inf: refused, since every range check lets nan through.
_SETTINGS = ConfigDict(extra="forbid", allow_inf_nan=False)

# `skinpamper train` trains this many runs on one split and averages their probabilities (an ensemble;
# training.ensemble): for models trained from scratch, the largest gain measured on other clinics'
# images (docs/training.md, Ensembles).
MEMBERS = 3
# A model's own defaults, applied over the ones in TrainConfig when it is chosen; a TOML file and flags
# still override them (resolve_config). Pretrained EfficientNet-Lite fine-tunes at 128 px, the largest
# square that never upsamples HAM10000's shared 200x150 JPEGs; the head learns for one epoch, then the
# network for seven more; flips, 90-degree turns, some zoom and colour jitter suit dermoscopy at this
# size (docs/training.md, Pretrained features).
_FINETUNE = {
    "image_size": 128,
    "epochs": 8,
    "learning_rate": 1e-3,
    "frozen_stages": 3,
    "augment": {"zoom": 0.1, "brightness": 0.1, "contrast": 0.1, "saturation": 0.1},
}
# What `skinpamper train` and `skinpamper.train` fit when no model is named (resolve_config): on
# held-out lesions it beat three averaged compact_cnn at 28 px, the default before (docs/training.md).
# `--model compact_cnn` brings the 28 px recipe back whole (its defaults are TrainConfig's).
DEFAULT_MODEL = "efficientnet_lite0"
# One pretrained model is the unit: issue #22 measured one Lite0 matching three scratch compact_cnn models
# on held-out lesions and beating them on other clinics' images, at a third of an ensemble's time.
PRETRAINED_MEMBERS = 1
MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    "efficientnet_lite0": _FINETUNE,
    "efficientnet_lite1": _FINETUNE,
    "efficientnet_lite2": _FINETUNE,
}

_Settings = TypeVar("_Settings")


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field, Field))
def _declared(cls: type[_Settings]) -> type[_Settings]:
    """`cls` as a frozen pydantic dataclass whose constructor raises ConfigError, not pydantic's
    ValidationError, so that code building a config by hand meets the same error as a config file."""
    cls = dataclass(frozen=True, config=_SETTINGS)(cls)
    validated = cls.__init__

    @functools.wraps(validated)
    def init(self: _Settings, *args: Any, **kwargs: Any) -> None:
        try:
            validated(self, *args, **kwargs)
        except ValidationError as exc:
            raise ConfigError(describe(exc)) from None

    cls.__init__ = init  # type: ignore[method-assign]
    return cls


@_declared
class AugmentConfig:
    """Training-only augmentation; images stay float 0..255 and are clipped back into that range."""

    enabled: StrictBool = True  # HAM10000 has ~7k training images; without augmentation the CNN overfits
    flip: StrictBool = True  # a lesion has no left/right or top/bottom
    rot90: StrictBool = True  # dermoscopy has no "up"; with flips this draws all 8 square symmetries
    # The rest is off by default: at 28 px, resampling blurs the few pixels there are (docs/training.md,
    # Augmentation). The values in comments are common choices for larger images, not measured here.
    rotation: Degrees = 0.0  # degrees either way on top of rot90 (e.g. 15)
    zoom: Jitter = 0.0  # scale in [1 - zoom, 1 + zoom] (e.g. 0.1): lesion size varies with distance
    translate: Jitter = 0.0  # fraction of the side (e.g. 0.05): lesions are roughly, not exactly, centred
    brightness: Jitter = 0.0  # multiply by [1 - b, 1 + b] (e.g. 0.1): illumination differs between devices
    contrast: Jitter = 0.0  # stretch around the image mean (e.g. 0.1)
    saturation: Jitter = 0.0  # scale colour away from grey (e.g. 0.1): camera colour response differs
    channel_gain: Jitter = 0.0  # scale each of R, G, B by its own [1 - g, 1 + g] (e.g. 0.2): white balance


@_declared
class TrainConfig:
    """Everything `train` needs besides the data itself."""

    data_path: StrictStr | None = None  # where the dataset was read from; recorded so a run can be resumed
    data_path_given: StrictStr | None = None  # data_path as typed (maybe relative); config.json's is absolute
    data_format: Format = "auto"  # detect the HAM10000 form from the path (see skinpamper.data.load)
    # The 28 px recipe's model, more accurate than "seed" at a fraction of its FLOPs (docs/training.md);
    # front ends start from DEFAULT_MODEL (above) unless a model is named.
    model: StrictStr = "compact_cnn"  # "seed" is the original notebook's CNN, kept as the baseline
    image_size: Positive = 28  # the original's input size (hmnist_28_28_RGB.csv)
    pretrained: StrictBool = True  # pretrained models start from ImageNet weights; others ignore it
    # Off by default: on real images from other clinics it bought nothing, while it costs balanced
    # accuracy on HAM10000's own lesions; it stays an option for its robustness to simulated colour
    # shifts, which alone are not enough to make it the default (docs/training.md, Colour constancy).
    colour_constancy: StrictBool = False  # a shades-of-grey layer in front of the model (models.colour)
    width: Multiplier = 1.0  # channel multiplier for models that take one (compact_cnn); others need 1.0
    fit: Fit = "squash"  # how 600x450 photos become square; squash is what hmnist did
    epochs: Positive = 25  # as the original
    batch_size: Positive = 64  # small enough for CPU training, large enough for stable BatchNorm statistics
    learning_rate: Annotated[StrictFloat, Field(gt=0)] = 1e-3  # Adam's default, as the original
    schedule: Schedule = "cosine"  # decays to 0 by the last epoch; no plateau heuristics to tune
    warmup_epochs: NonNegative = 1.0  # linear warm-up keeps Adam's first, badly-estimated steps small
    weight_decay: NonNegative = 0.0  # the original used none; decoupled (AdamW-style) when > 0
    # Class weights by measurement: balanced sampling and logit_adjust reach no better mean recall, the
    # figure this tool ranks by (docs/training.md).
    imbalance: Imbalance = "class_weight"  # nv is 2/3 of the images; weighting the loss evens the classes out
    # Early stopping counts epochs without a better val balanced accuracy, in the schedule's second half
    # only (early epochs swing with the high learning rate). Off by default: with cosine decay to zero
    # the last epochs are the best-annealed, and no gain was measured either way (docs/training.md).
    patience: Count = 0  # 0 never stops; the best epoch is kept either way
    val_fraction: Fraction = 0.1  # ~1,000 images: enough to rank epochs, small enough to keep training data
    test_fraction: Fraction = 0.2  # ~2,000 images: enough for per-class recall of the rare classes
    # "auto" (training.precision.resolve_precision): mixed bfloat16 on CPUs with native bf16 and on
    # Ampere-or-newer GPUs, float16 with loss scaling on older GPUs, else float32; bf16 was measured
    # faster for the same accuracy (docs/training.md).
    precision: Precision = "auto"  # or "float32", "bfloat16", "float16"; saved models are float32 anyway
    # XLA compilation (training.precision.resolve_jit_compile): "auto" is off on CPUs, where it was
    # measured slower, and Keras's own choice on GPUs.
    xla: Xla = "auto"  # or "on" / "off"
    # batch_size stays the global batch on several devices: each gets batch_size / devices images a
    # step and the learning rate means what it does on one (training.devices).
    devices: Positive = 1  # one machine's devices trained on together (MirroredStrategy); 1 is Keras's choice
    seed: StrictInt = 0  # one seed for split, initial weights, shuffling and augmentation
    split_seed: StrictInt | None = None  # the split's own seed when set: ensemble members share a split
    # Abstention (skinpamper.scoring.abstention), fitted on the validation split when training ends
    # (docs/trust.md). 95% kept is the usual operating point of OOD detectors (FPR at 95% TPR).
    ood_keep: Keep = 0.95  # share of validation images the out-of-distribution threshold accepts
    # "uncertain" below the confidence at which validation balanced accuracy reaches this level.
    abstention_target: Share = 0.70  # validation balanced accuracy of the images answered "ok"
    # Balanced accuracy alone let a second clinic's melanomas through as "ok" (docs/trust.md).
    ok_mel_sensitivity: Share = 0.65  # of the validation melanomas answered "ok"
    mel_rule_out_sensitivity: Share = 0.90  # of validation melanomas at or above the rule-out cut
    # The dermoscopy detector (scoring.dermoscopy) refuses above the log-odds that accept this share of
    # validation dermoscopy, plain and under simulated clinic shifts: 1 in 100, not 1 in 20, since a
    # refusal now means "not dermoscopy" and unfamiliar dermoscopy is answered (status unfamiliar).
    dermoscopy_keep: Keep = 0.99  # share of validation dermoscopy the detector accepts (docs/trust.md)
    # Fine-tuning a pretrained backbone (training.finetune); models trained from scratch ignore these.
    head_epochs: NonNegative = 1.0  # the head learns alone first: a random one would wreck pretrained weights
    # The backbone then learns at half the head's rate, the rate at which a first untuned
    # EfficientNet-Lite0 run (issue #22) matched three scratch models.
    backbone_lr_scale: Unit = 0.5  # of learning_rate, for every layer outside the head
    frozen_stages: Count = 0  # this many first stages never train, the stem counting as one (0: none)
    augment: AugmentConfig = dataclasses.field(default_factory=AugmentConfig)  # a TOML file's [augment] table

    @model_validator(mode="after")
    def _check_together(self) -> TrainConfig:
        """The rules that span two fields; each field's own range is declared on it."""
        if self.batch_size % self.devices:
            raise ValueError(
                f"batch_size {self.batch_size} does not split evenly over {self.devices} devices; "
                f"choose a multiple of {self.devices}"
            )
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError(
                f"val_fraction {self.val_fraction} and test_fraction {self.test_fraction} must sum below 1, "
                "leaving images to train on"
            )
        return self

    @property
    def effective_split_seed(self) -> int:
        """The seed the lesion-grouped split is drawn with."""
        return self.seed if self.split_seed is None else self.split_seed

    def replace(self, **overrides: Any) -> TrainConfig:
        """A copy with `overrides` applied; None values are skipped (CLI flags left unset).

        Augmentation settings are given as `augment={"rotation": 30.0}` (or an AugmentConfig) or
        `**{"augment.rotation": 30.0}`.
        """
        changes: dict[str, Any] = {}
        for key, value in overrides.items():
            if value is None:
                continue
            if isinstance(value, AugmentConfig):
                value = dataclasses.asdict(value)
            if key.startswith("augment."):
                key, value = "augment", {key.removeprefix("augment."): value}
            changes = _over(changes, {key: value})
        return TrainConfig.from_dict(_over(self.to_dict(), changes), source="options")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values, with augmentation as a nested dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> TrainConfig:
        """Build from `to_dict` output or a parsed TOML file; errors name `source`, then the field."""
        try:
            return TypeAdapter(cls).validate_python(data)
        except ValidationError as exc:
            raise ConfigError(f"{source}: {describe(exc)}") from None


def _over(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """`changes` laid over `base`; a table in both (augment) is merged key by key, not replaced."""
    merged = dict(base)
    for key, value in changes.items():
        both = isinstance(value, dict) and isinstance(merged.get(key), dict)
        merged[key] = {**merged[key], **value} if both else value
    return merged


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
    """Read a TOML file over `base` (the defaults); its `[augment]` table over base's augmentation."""
    path = Path(path).expanduser()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    return TrainConfig.from_dict(_over((base or TrainConfig()).to_dict(), data), source=str(path))
