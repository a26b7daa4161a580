"""TrainConfig: defaults, TOML loading, errors naming the file and the field, CLI-style overrides."""

from __future__ import annotations

import dataclasses
import inspect
import json
from pathlib import Path

import pytest

from skinpamper.errors import ConfigError
from skinpamper.training import config as config_module
from skinpamper.training.config import AugmentConfig, TrainConfig, load_config

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


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
    ("text", "message"),
    [
        # Unknown keys, at the top and in the [augment] table.
        ("epochz = 3\n", "epochz: unknown key, got 3"),
        ("[augment]\nrotate = 3\n", "augment.rotate: unknown key, got 3"),
        # Wrong types: a bool is not a number nor a number a flag, a float not an integer.
        ('epochs = "ten"\n', "epochs: input should be a valid integer, got 'ten'"),
        ("epochs = true\n", "epochs: input should be a valid integer, got True"),
        ("epochs = 2.0\n", "epochs: input should be a valid integer, got 2.0"),
        ("learning_rate = false\n", "learning_rate: input should be a valid number, got False"),
        ("[augment]\nflip = 1\n", "augment.flip: input should be a valid boolean, got 1"),
        ("augment = 3\n", "augment: input should be a dictionary or an instance of AugmentConfig, got 3"),
        # Out of range.
        ("batch_size = 0\n", "batch_size: input should be greater than or equal to 1, got 0"),
        ("width = 0\n", "width: input should be greater than or equal to 0.1, got 0"),
        ("[augment]\nzoom = 1.5\n", "augment.zoom: input should be less than 1, got 1.5"),
        # TOML spells nan and inf; a range check alone lets nan through (every comparison is false).
        ("warmup_epochs = nan\n", "warmup_epochs: input should be a finite number, got nan"),
        ("weight_decay = inf\n", "weight_decay: input should be a finite number, got inf"),
        ("[augment]\nzoom = nan\n", "augment.zoom: input should be a finite number, got nan"),
        # A choice not on the list.
        (
            'imbalance = "smote"\n',
            "imbalance: input should be 'class_weight', 'logit_adjust', 'balanced_sampling', 'oversample' "
            "or 'none', got 'smote'",
        ),
        # Rules across two fields name both.
        (
            "val_fraction = 0.5\ntest_fraction = 0.5\n",
            "val_fraction 0.5 and test_fraction 0.5 must sum below 1, leaving images to train on",
        ),
        (
            "batch_size = 9\ndevices = 2\n",
            "batch_size 9 does not split evenly over 2 devices; choose a multiple of 2",
        ),
    ],
)
def test_an_invalid_setting_is_one_line_naming_the_file_and_the_field(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: {message}"


def test_several_problems_are_listed_on_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('seed = "one"\nbatch_size = 0\nepochs = 0\n[augment]\nzoom = -1\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)  # in the order the fields are declared, the first three
    assert message.startswith(f"{path}: epochs: input should be greater than or equal to 1, got 0; ")
    assert "; seed: input should be a valid integer, got 'one'; and 1 more" in message
    assert "\n" not in message


def test_a_config_built_in_code_is_checked_alike() -> None:
    with pytest.raises(ConfigError, match=r"^epochs: input should be greater than or equal to 1, got 0$"):
        TrainConfig(epochs=0)
    with pytest.raises(ConfigError, match=r"^rotation: input should be less than or equal to 180, got 200$"):
        AugmentConfig(rotation=200)
    with pytest.raises(ConfigError, match=r"^options: augment.rotation: input should be less than or equal"):
        TrainConfig().replace(**{"augment.rotation": 200})
    with pytest.raises(ConfigError, match=r"^config: epochs: input should be a valid integer, got '3'$"):
        TrainConfig.from_dict({"epochs": "3"})


@pytest.mark.parametrize(
    ("name", "choices"),
    [
        ("imbalance", config_module.IMBALANCE),
        ("schedule", config_module.SCHEDULES),
        ("precision", config_module.PRECISIONS),
        ("xla", config_module.XLA),
    ],
)
def test_every_choice_the_cli_offers_is_accepted(name: str, choices: tuple[str, ...]) -> None:
    assert [getattr(TrainConfig(**{name: choice}), name) for choice in choices] == list(choices)


def test_a_config_saved_by_an_older_run_still_loads() -> None:
    """config.json of a run saved by main at 9132af7: it lacks the settings added since (their defaults)."""
    saved = json.loads((FIXTURES / "run_main_9132af7" / "config.json").read_text())
    config = TrainConfig.from_dict(saved, source="config.json")
    assert (config.model, config.width, config.epochs, config.batch_size) == ("compact_cnn", 0.25, 2, 8)
    assert config.dermoscopy_keep == TrainConfig().dermoscopy_keep and "dermoscopy_keep" not in saved


def test_a_missing_or_unparsable_file_is_a_config_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope.toml: config file not found$"):
        load_config(tmp_path / "nope.toml")
    path = tmp_path / "bad.toml"
    path.write_text("epochs = [\n")
    with pytest.raises(ConfigError, match=r"bad.toml: not valid TOML \("):
        load_config(path)


def test_flags_override_toml_and_none_means_unset(tmp_path) -> None:
    path = tmp_path / "train.toml"
    path.write_text("epochs = 3\nbatch_size = 16\n")
    config = load_config(path).replace(epochs=5, batch_size=None, **{"augment.flip": False})
    assert (config.epochs, config.batch_size, config.augment.flip) == (5, 16, False)
    assert config.replace(augment={"enabled": False}).augment == dataclasses.replace(
        config.augment, enabled=False
    )
    with pytest.raises(ConfigError, match=r"^options: epoch: unknown key, got 3$"):
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
    with pytest.raises(
        ConfigError, match=r"c.toml: split_seed: input should be a valid integer, got 'zero'$"
    ):
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
