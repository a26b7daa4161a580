"""Model registry and architectures. Importing this imports Keras; the data layer never does."""

from skinpamper.models.registry import create_model, get_model_info, list_models, register_model

__all__ = ["create_model", "get_model_info", "list_models", "register_model"]
