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
from importlib import import_module

from skinpamper.errors import ConfigError

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


def create_model(
    name: str, image_size: int | None = None, num_classes: int = 7, pretrained: bool = True, **kwargs
):
    """Build the registered model `name` for square images of `image_size` pixels.

    `pretrained=False` asks builders that can load ImageNet weights to start from scratch instead;
    it means nothing to models that have no pretrained weights.
    """
    info = get_model_info(name)
    if not pretrained and "weights" in inspect.signature(info.builder).parameters:
        kwargs.setdefault("weights", None)
    return info.builder(image_size=image_size or info.default_size, num_classes=num_classes, **kwargs)
