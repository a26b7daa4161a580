"""A table of model builders: `@register_model`, `create_model(name, **kw)`, `list_models()`.

Every model takes float images in the 0..255 range, shape (H, W, 3), and returns softmax
probabilities over the seven canonical classes; any scaling lives inside the model so that
training, evaluation and prediction cannot disagree about preprocessing. The softmax layer is
always float32 (`dtype="float32"`), so mixed-precision training still gets exact probabilities.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import import_module

from skinpamper.errors import ConfigError
from skinpamper.models.colour import with_colour_constancy  # also registers its layer for loading

MAX_IMAGE_SIZE = 1024  # px, as the CLI's --image-size allows
_BUILTIN_MODULES = (
    "skinpamper.models.seed",
    "skinpamper.models.compact",
    "skinpamper.models.resnet",
    "skinpamper.models.applications",
)


@dataclass(frozen=True)
class ModelInfo:
    """What `skinpamper models` lists about a registered builder."""

    name: str
    default_size: int
    description: str
    builder: Callable


_REGISTRY: dict[str, ModelInfo] = {}


def register_model(name: str, default_size: int, description: str) -> Callable[[Callable], Callable]:
    """Decorator: add a builder `fn(image_size, num_classes, **kw) -> keras.Model` under `name`."""

    def wrap(fn: Callable) -> Callable:
        _REGISTRY[name] = ModelInfo(name, default_size, description, fn)
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


def _takes_width(name: str) -> bool:
    return "width" in inspect.signature(_REGISTRY[name].builder).parameters


def check_width(name: str, width: float) -> None:
    """Refuse a width other than 1 for a model without a width option, naming those that have one."""
    get_model_info(name)
    if width != 1.0 and not _takes_width(name):
        takes = ", ".join(n for n in sorted(_REGISTRY) if _takes_width(n))
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

    `pretrained=False` asks builders that can load ImageNet weights to start from scratch instead;
    it means nothing to models that have no pretrained weights. `width` scales the channels of
    models built with a `width` option; asking another model for a width other than 1 is an error.
    `colour_constancy` puts a shades-of-grey layer in front (skinpamper.models.colour).
    """
    info = get_model_info(name)
    options = inspect.signature(info.builder).parameters
    if not pretrained and "weights" in options:
        kwargs.setdefault("weights", None)
    check_width(name, width)
    if "width" in options:
        kwargs["width"] = width
    model = info.builder(image_size=image_size or info.default_size, num_classes=num_classes, **kwargs)
    return with_colour_constancy(model) if colour_constancy else model


def _builds(name: str, image_size: int, width: float) -> bool:
    import keras

    try:
        with keras.device("cpu"):
            create_model(name, image_size=image_size, pretrained=False, width=width)
    except ValueError:  # a pooling or convolution that would shrink the map below one pixel
        return False
    return True


@cache
def check_image_size(name: str, image_size: int, width: float = 1.0) -> None:
    """ConfigError unless model `name` takes `image_size` px images, naming the smallest size it takes.

    The model is built once on the CPU, without pretrained weights: the layers themselves are the
    only complete record of how far each architecture shrinks its input. Callers seed their random
    generators after this, so the build does not change the weights a run starts from.
    """
    if _builds(name, image_size, width):
        return
    larger = range(image_size + 1, MAX_IMAGE_SIZE + 1)
    smallest = next((size for size in larger if _builds(name, size, width)), None)
    hint = f"; the smallest it takes is {smallest} px" if smallest else ""
    raise ConfigError(
        f"model {name!r} cannot take {image_size} px images: its layers would shrink them below one pixel"
        + hint
    )
