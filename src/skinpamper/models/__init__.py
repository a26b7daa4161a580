"""Model registry and architectures. Importing this imports Keras; the data layer never does."""

from skinpamper.models.registry import (
    check_image_size,
    check_width,
    create_model,
    get_model_info,
    list_models,
    prepare_weights,
    register_model,
)

__all__ = [
    "check_image_size",
    "check_width",
    "create_model",
    "get_model_info",
    "list_models",
    "prepare_weights",
    "register_model",
]
