"""TrainConfig: defaults, TOML loading, errors naming key and file, CLI-style overrides."""

from __future__ import annotations

import dataclasses
import inspect
import json
from pathlib import Path

import pytest

from skinpamper.errors import ConfigError
from skinpamper.training import config as config_module
from skinpamper.training.config import AugmentConfig, TrainConfig, load_config


def test_defaults_are_the_original_system_with_the_measured_best_model() -> None:
    config = TrainConfig()
    assert (config.model, config.image_size, config.fit) == ("compact_cnn", 28, "squash")
    assert (config.epochs, config.batch_size, config.learning_rate) == (25, 64, 1e-3)
    assert (config.schedule, config.warmup_epochs, config.imbalance) == ("cosine", 1.0, "class_weight")
    assert (config.val_fraction, config.test_fraction, config.seed) == (0.1, 0.2, 0)
    assert config.augment.enabled and config.augment.flip and config.augment.rot90


def test_every_default_has_its_reason_beside_it() -> None:
    source = inspect.getsource(config_module)
    for cls in (TrainConfig, AugmentConfig):
        for field in dataclasses.fields(cls):
            line = next(ln for ln in source.splitlines() if ln.strip().startswith(f"{field.name}:"))
            assert "#" in line or field.name == "augment", f"{cls.__name__}.{field.name} has no reason"


def test_toml_overrides_defaults_and_round_trips(tmp_path) -> None:
    path = tmp_path / "train.toml"
    path.write_text('epochs = 3\nlearning_rate = 1\nimbalance = "oversample"\n[augment]\nrotation = 30\n')
    config = load_config(path)
    assert config.epochs == 3 and config.imbalance == "oversample"
    assert config.learning_rate == 1.0 and isinstance(config.learning_rate, float)
    assert config.augment.rotation == 30.0 and config.augment.zoom == AugmentConfig().zoom
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


@pytest.mark.parametrize(
    ("text", "key"), [("epochz = 3\n", "epochz"), ("[augment]\nrotate = 3\n", "augment.rotate")]
)
def test_unknown_key_names_key_and_file(tmp_path, text: str, key: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert key in str(info.value) and str(path) in str(info.value)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('epochs = "ten"\n', "epochs must be an integer"),
        ("batch_size = 0\n", "batch_size"),
        ("width = 0\n", "width must be between"),
        ('imbalance = "smote"\n', "imbalance must be one of"),
        ("val_fraction = 0.5\ntest_fraction = 0.5\n", "sum below 1"),
        ("[augment]\nzoom = 1.5\n", "augment.zoom"),
        ("epochs = [\n", "not valid TOML"),
        # TOML spells nan and inf; a range check alone lets nan through (every comparison is false).
        ("warmup_epochs = nan\n", "warmup_epochs must be a finite number, got nan"),
        ("weight_decay = inf\n", "weight_decay must be a finite number"),
        ("[augment]\nzoom = nan\n", "augment.zoom must be a finite number"),
    ],
)
def test_invalid_values_are_config_errors_naming_the_file(tmp_path, text: str, words: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=words) as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_missing_file_is_a_config_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")


def test_flags_override_toml_and_none_means_unset(tmp_path) -> None:
    path = tmp_path / "train.toml"
    path.write_text("epochs = 3\nbatch_size = 16\n")
    config = load_config(path).replace(epochs=5, batch_size=None, **{"augment.flip": False})
    assert (config.epochs, config.batch_size, config.augment.flip) == (5, 16, False)
    assert config.replace(augment={"enabled": False}).augment == dataclasses.replace(
        config.augment, enabled=False
    )
    with pytest.raises(ConfigError, match="unknown key 'epoch'"):
        config.replace(epoch=3)


def test_config_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        TrainConfig().epochs = 3  # type: ignore[misc]


def test_split_seed_defaults_to_the_seed_and_round_trips(tmp_path) -> None:
    assert TrainConfig(seed=4).effective_split_seed == 4
    config = TrainConfig(seed=4, split_seed=0)
    assert config.effective_split_seed == 0
    assert TrainConfig.from_dict(config.to_dict()) == config
    path = tmp_path / "c.toml"
    path.write_text('split_seed = "zero"\n')
    with pytest.raises(ConfigError, match="split_seed must be an integer"):
        load_config(path)


def test_the_example_config_is_valid_and_means_what_it_says() -> None:
    """examples/train.toml is what docs point newcomers to: it must load, and its values must be used."""
    from skinpamper.training.config import resolve_config

    path = Path(__file__).resolve().parents[2] / "examples" / "train.toml"
    config = resolve_config(path)
    assert (config.model, config.image_size, config.epochs, config.frozen_stages) == (
        "efficientnet_lite0",
        128,
        8,
        3,
    )
    assert config.augment.zoom == 0.1 and config.backbone_lr_scale == 0.5
