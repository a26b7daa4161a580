"""Fine-tuning a pretrained backbone: the head learns alone first, early stages and batch norm stay as
ImageNet left them, and the model's own defaults apply unless the user sets a value."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from skinpamper.models import create_model
from skinpamper.training.config import DEFAULT_MODEL, TrainConfig, resolve_config
from skinpamper.training.finetune import freeze_for_finetuning, uses_finetuning
from skinpamper.training.train import make_optimizer

SIZE = 32


def _fitted(config: TrainConfig, steps: int) -> tuple[keras.Model, keras.Model]:
    """(model before, model after) `steps` training steps of `config` on random images."""
    model = create_model(config.model, SIZE)
    before = keras.models.clone_model(model)
    before.set_weights(model.get_weights())
    freeze_for_finetuning(model, config)
    model.compile(optimizer=make_optimizer(config, steps_per_epoch=2), loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (8, SIZE, SIZE, 3)).astype(np.float32)
    model.fit(images, np.arange(8) % 7, batch_size=4, epochs=steps // 2, verbose=0)
    return before, model


def _changed(before: keras.Model, after: keras.Model, name: str) -> bool:
    old, new = before.get_layer(name).get_weights(), after.get_layer(name).get_weights()
    return any(not np.array_equal(a, b) for a, b in zip(old, new, strict=True))


@pytest.mark.slow
def test_the_head_learns_alone_for_its_epochs() -> None:
    config = resolve_config(model="efficientnet_lite0", head_epochs=1.0, frozen_stages=0, schedule="constant")
    before, after = _fitted(config, steps=2)  # one epoch of two steps: the head's alone
    assert _changed(before, after, "predictions")
    assert not _changed(before, after, "block10_expand_conv") and not _changed(before, after, "stem_conv")


@pytest.mark.slow
def test_then_the_backbone_learns_but_frozen_stages_and_batch_norm_do_not() -> None:
    config = resolve_config(model="efficientnet_lite0", head_epochs=0.5, frozen_stages=3, schedule="constant")
    before, after = _fitted(config, steps=4)
    assert _changed(before, after, "predictions") and _changed(before, after, "block10_expand_conv")
    # stem, stage 1 (block 0) and stage 2 (blocks 1-2) are frozen; stage 3 starts at block 3
    assert not _changed(before, after, "stem_conv") and not _changed(before, after, "block2_project_conv")
    assert _changed(before, after, "block3_expand_conv")
    assert not _changed(before, after, "block10_expand_bn")  # moving statistics included


def test_a_pretrained_model_gets_its_own_defaults_and_flags_still_win(tmp_path: Path) -> None:
    recipe = resolve_config(model="efficientnet_lite0")
    assert (recipe.image_size, recipe.epochs, recipe.augment.zoom) == (128, 8, 0.1)
    assert uses_finetuning(recipe) and not uses_finetuning(recipe.replace(pretrained=False))
    assert resolve_config(model="efficientnet_lite0", epochs=3, image_size=96).epochs == 3
    toml = tmp_path / "lite.toml"
    toml.write_text('model = "efficientnet_lite0"\nepochs = 5\n[augment]\nzoom = 0.2\n')
    from_file = resolve_config(toml)
    assert (from_file.image_size, from_file.epochs, from_file.augment.zoom) == (128, 5, 0.2)
    assert resolve_config().model == DEFAULT_MODEL == "efficientnet_lite0"
    assert resolve_config(model="compact_cnn") == TrainConfig(model="compact_cnn")  # the 28 px recipe, whole
    assert not uses_finetuning(TrainConfig())


@pytest.mark.slow
def test_a_run_resumes_mid_schedule_with_its_optimizer(tmp_path: Path) -> None:
    config = resolve_config(model="efficientnet_lite0", head_epochs=1.0, frozen_stages=2)
    _, model = _fitted(config, steps=2)
    path = tmp_path / "last.keras"
    model.save(path)
    import skinpamper.training.finetune  # noqa: F401 (registers FineTuneAdam, as Run.load_model does)

    loaded = keras.models.load_model(path)
    assert type(loaded.optimizer).__name__ == "FineTuneAdam"
    assert loaded.optimizer.head_steps == model.optimizer.head_steps == 2
    assert int(loaded.optimizer.iterations) == 2
    assert not loaded.get_layer("stem_conv").trainable and not loaded.get_layer("block5_dw_bn").trainable


@pytest.mark.parametrize(
    ("key", "value"), [("backbone_lr_scale", 1.5), ("head_epochs", -1), ("frozen_stages", -1)]
)
def test_bad_finetuning_settings_are_refused(key: str, value: float) -> None:
    from skinpamper.errors import ConfigError

    with pytest.raises(ConfigError, match=key):
        TrainConfig(**{key: value})
