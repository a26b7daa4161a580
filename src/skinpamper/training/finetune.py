"""Fine-tuning a pretrained backbone: the head first, then the network at a lower rate, early stages frozen.

Three things, each standard practice (Keras's transfer-learning guide; Howard & Ruder 2018):
- **Batch norm stays in inference mode.** Its ImageNet statistics are kept (`trainable = False`), so
  64-image batches of dermoscopy never replace them with noisy batch statistics; the convolutions
  around it still learn.
- **Early stages are frozen** (`frozen_stages`, counting the stem as the first): edges and textures
  transfer as they are, and a frozen layer needs no gradient, which is where most of a 128 px
  network's training time goes.
- **The head learns first.** For `head_epochs` the backbone's rate is zero, so a random head cannot
  push large, meaningless gradients into pretrained weights; then the backbone learns at
  `backbone_lr_scale` times the head's rate. One optimizer does both (`FineTuneAdam`), so a run
  resumes mid-schedule like any other.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from skinpamper.models import get_model_info
from skinpamper.models.registry import HEAD_LAYERS
from skinpamper.training.config import TrainConfig


@keras.saving.register_keras_serializable(package="skinpamper")
class FineTuneAdam(keras.optimizers.Adam):
    """Adam whose rate for variables outside the head is 0 for `head_steps`, then `backbone_scale` x."""

    def __init__(
        self, head_layers: list[str], head_steps: int, backbone_scale: float, **kwargs: object
    ) -> None:
        super().__init__(**kwargs)
        self.head_layers, self.head_steps, self.backbone_scale = list(head_layers), head_steps, backbone_scale
        self._in_head: list[bool] = []

    def build(self, var_list: list) -> None:
        super().build(var_list)
        self._in_head = [variable.path.split("/")[0] in self.head_layers for variable in var_list]

    def update_step(self, gradient: object, variable: object, learning_rate: object) -> None:
        if not self._in_head[self._get_variable_index(variable)]:
            scale = ops.where(self.iterations < self.head_steps, 0.0, self.backbone_scale)
            learning_rate = learning_rate * ops.cast(scale, learning_rate.dtype)
        super().update_step(gradient, variable, learning_rate)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "head_layers": self.head_layers,
            "head_steps": self.head_steps,
            "backbone_scale": self.backbone_scale,
        }


def uses_finetuning(config: TrainConfig) -> bool:
    """Whether `config` fine-tunes a pretrained backbone (the recipe's settings apply)."""
    info = get_model_info(config.model)
    return config.pretrained and info.pretrained and info.layer_stage is not None


def freeze_for_finetuning(model: keras.Model, config: TrainConfig) -> None:
    """Batch norm to inference mode and the first `frozen_stages` stages frozen, in place."""
    stage = get_model_info(config.model).layer_stage

    def frozen(layer: keras.layers.Layer) -> bool:
        if isinstance(layer, layers.BatchNormalization):
            return True
        return layer.name not in HEAD_LAYERS and stage(layer.name) < config.frozen_stages

    for layer in model.layers:
        if layer.weights and frozen(layer):
            layer.trainable = False


def finetune_optimizer(
    config: TrainConfig, learning_rate: object, steps_per_epoch: int
) -> keras.optimizers.Optimizer:
    """Adam with the head-first schedule of `config`, over `learning_rate` (a rate or a schedule)."""
    return FineTuneAdam(
        head_layers=list(HEAD_LAYERS),
        head_steps=round(config.head_epochs * steps_per_epoch),
        backbone_scale=config.backbone_lr_scale,
        learning_rate=learning_rate,
        weight_decay=config.weight_decay or None,
    )
