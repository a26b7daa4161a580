"""A Run folder: everything needed to understand, resume, evaluate or serve one training run.

    config.json       the resolved TrainConfig
    split.json        image ids of train/val/test (ids, not row numbers, survive source re-ordering)
    dataset.json      source, image count and size, class counts, split sizes, lesion grouping
    environment.json  Python, package versions, Keras backend, device, git commit (no host name)
    history.csv       one row per finished epoch
    model.keras       the best epoch by validation balanced accuracy
    last.keras        the last finished epoch, optimizer state included, for resume
    state.json        last finished epoch, best epoch and score, whether it stopped early
    metrics.json      {"val": ..., "test": ...} of model.keras, written when training ends, plus
                      "with_metadata" (the same two with age, sex and site added) when it has them
    calibration.json  temperature fitted on the validation split, ECE and Brier before/after
    metadata_model.json  what age, sex and site say about the class, fitted on the training split
                      (absent when the data has no such metadata)
    members.json      an ensemble's member runs and their test scores (ensembles only)
    ood_detector.npz  class centres and whitening of the training split's features (scoring/ood.py)
    abstention.json   OOD and confidence thresholds fitted on the validation split, and the targets

Every file is written to a temporary name and renamed into place, so an interrupted run never leaves a
half-written file; state.json is written last in each epoch and is what resume trusts.
"""

from __future__ import annotations

import csv
import io
import json
import os
import platform
import subprocess
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import keras

from skinpamper.atomic import replace_into, write_json_atomic, write_text_atomic
from skinpamper.classes import CODES
from skinpamper.data.dataset import Dataset
from skinpamper.data.splits import Split
from skinpamper.errors import ConfigError
from skinpamper.scoring.abstention import Abstention
from skinpamper.scoring.metadata_model import MetadataModel
from skinpamper.scoring.ood import OODDetector
from skinpamper.training.config import TrainConfig

CONFIG, SPLIT, DATASET, ENVIRONMENT = "config.json", "split.json", "dataset.json", "environment.json"
HISTORY, STATE, METRICS = "history.csv", "state.json", "metrics.json"
CALIBRATION, METADATA_MODEL = "calibration.json", "metadata_model.json"
BEST_MODEL, LAST_MODEL = "model.keras", "last.keras"
OOD_DETECTOR, ABSTENTION = "ood_detector.npz", "abstention.json"
MEMBERS = "members.json"  # an ensemble's runs, written by skinpamper.training.ensemble
HISTORY_COLUMNS: tuple[str, ...] = (
    "epoch",
    "loss",
    "accuracy",
    "balanced_accuracy",  # of the un-augmented training subset (TRAIN_SCORED images), like val's
    "val_loss",
    "val_accuracy",
    "val_balanced_accuracy",
    *(f"val_recall_{code}" for code in CODES),
    "lr",  # at the epoch's last step
    "seconds",  # wall time of the epoch, validation included
)
_PACKAGES = (
    "skinpamper",
    "keras",
    "tensorflow",
    "tensorflow-cpu",
    "numpy",
    "scikit-learn",
    "pandas",
    "pillow",
)


@dataclass(frozen=True)
class RunState:
    """Progress of a run; epochs are counted from 1, and 0 means none has finished."""

    epoch: int = 0
    best_epoch: int = 0
    best_score: float | None = None  # validation balanced accuracy of model.keras
    stopped_early: bool = False
    finished: bool = False  # training is over and metrics.json is written
    # Dropout's random-stream positions: Keras does not save them in .keras, and without them a resumed
    # run would draw different dropout masks from an uninterrupted one.
    seed_states: tuple[tuple[int, ...], ...] = ()


class Run:
    """One run folder; methods read and write its files."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()

    @classmethod
    def create(cls, path: str | Path) -> Run:
        """A new run folder; refuses one that already holds a run, so nothing is overwritten."""
        run = cls(path)
        if (run.path / CONFIG).exists():
            raise ConfigError(f"{run.path}: already holds a run; resume it or choose another output folder")
        run.path.mkdir(parents=True, exist_ok=True)
        return run

    @classmethod
    def open(cls, path: str | Path) -> Run:
        """An existing run folder (one with config.json)."""
        run = cls(path)
        if not (run.path / CONFIG).is_file():
            raise ConfigError(f"{run.path}: not a Skin Pamper run folder (no {CONFIG})")
        return run

    def file(self, name: str) -> Path:
        return self.path / name

    def write_config(self, config: TrainConfig) -> None:
        write_json_atomic(self.file(CONFIG), config.to_dict())

    def config(self) -> TrainConfig:
        path = self.file(CONFIG)
        data = json.loads(path.read_text(encoding="utf-8"))
        data.setdefault("colour_constancy", False)  # runs saved before the option existed had no such layer
        return TrainConfig.from_dict(data, source=str(path))

    def write_split(self, split: Split, dataset: Dataset) -> None:
        replace_into(self.file(SPLIT), lambda p: split.save(p, dataset))

    def split(self, dataset: Dataset) -> Split:
        return Split.load(self.file(SPLIT), dataset)

    def write_state(self, state: RunState) -> None:
        write_json_atomic(self.file(STATE), asdict(state))

    def state(self) -> RunState:
        """The saved state, or a fresh one when no epoch has finished yet."""
        path = self.file(STATE)
        if not path.exists():
            return RunState()
        saved = json.loads(path.read_text(encoding="utf-8"))
        saved["seed_states"] = tuple(tuple(s) for s in saved.get("seed_states", ()))
        return RunState(**saved)

    def write_history(self, rows: list[dict[str, float]]) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=HISTORY_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        write_text_atomic(self.file(HISTORY), buffer.getvalue())

    def history(self) -> list[dict[str, float]]:
        """Rows of history.csv as numbers (epoch as int); empty before the first epoch."""
        path = self.file(HISTORY)
        if not path.exists():
            return []
        with path.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
        # A column added in a later version is empty in older runs' rows: NaN, not a crash on resume.
        return [{k: int(v) if k == "epoch" else float(v or "nan") for k, v in row.items()} for row in rows]

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        write_json_atomic(self.file(METRICS), metrics)

    def metrics(self) -> dict[str, Any]:
        return json.loads(self.file(METRICS).read_text(encoding="utf-8"))

    def write_calibration(self, record: dict[str, Any]) -> None:
        write_json_atomic(self.file(CALIBRATION), record)

    def calibration(self) -> dict[str, Any] | None:
        """The temperature fitted on the validation split and ECE before/after; None for a run without."""
        path = self.file(CALIBRATION)
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None

    def temperature(self) -> float | None:
        """T to apply to the best model's probabilities at prediction time (None: leave them as they are)."""
        record = self.calibration()
        return None if record is None else float(record["temperature"])

    def write_metadata_model(self, model: MetadataModel) -> None:
        write_json_atomic(self.file(METADATA_MODEL), model.to_dict())

    def metadata_model(self) -> MetadataModel | None:
        """The run's age/sex/site model; None for data without such metadata, or runs made before it."""
        path = self.file(METADATA_MODEL)
        if not path.exists():
            return None
        return MetadataModel.from_dict(json.loads(path.read_text(encoding="utf-8")), str(path))

    def write_abstention(self, detector: OODDetector, abstention: Abstention) -> None:
        """The detector first: abstention.json is what says a run has one, so it is written last."""
        replace_into(self.file(OOD_DETECTOR), detector.save)
        write_json_atomic(self.file(ABSTENTION), abstention.to_dict())

    def abstention(self) -> tuple[OODDetector, Abstention] | None:
        """The run's OOD detector and abstention rules; None for a run saved before they existed."""
        path = self.file(ABSTENTION)
        if not path.exists():
            return None
        rules = Abstention.from_dict(json.loads(path.read_text(encoding="utf-8")), str(path))
        return OODDetector.load(self.file(OOD_DETECTOR)), rules

    def serving_model(self, model: keras.Model) -> keras.Model:
        """`model` with the run's OOD score as a second output (images -> [probabilities, ood_score]);
        `model` itself for a run without a detector."""
        saved = self.abstention()
        if saved is None:
            return model
        from skinpamper.models.ood_head import with_ood_score

        return with_ood_score(model, saved[0].centres, saved[0].projections)

    def write_dataset_info(self, dataset: Dataset, split: Split, config: TrainConfig) -> None:
        write_json_atomic(self.file(DATASET), dataset_info(dataset, split, config))

    def write_environment(self, **training: Any) -> None:
        """environment.json: the software and hardware, plus how training used them (e.g. precision)."""
        write_json_atomic(self.file(ENVIRONMENT), {**environment_info(), **training})

    def save_model(self, model: keras.Model, name: str) -> None:
        replace_into(self.file(name), model.save)

    def load_model(self, name: str = BEST_MODEL) -> keras.Model:
        """A saved model; registered custom models and losses are imported first so they deserialise
        (model.keras keeps its compiled loss, e.g. a logit-adjusted one)."""
        import skinpamper.training.losses  # noqa: F401 (registers LogitAdjustedCrossEntropy with Keras)
        from skinpamper.models import list_models

        list_models()
        path = self.file(name)
        if not path.exists():
            raise ConfigError(f"{path}: no such model in the run folder")
        return keras.models.load_model(path)


def seed_states(model: keras.Model) -> tuple[tuple[int, ...], ...]:
    """The state of every random-seed generator in `model`, in variable order."""
    return tuple(
        tuple(int(v) for v in keras.ops.convert_to_numpy(var))
        for var in model.variables
        if var.path.endswith("seed_generator_state")
    )


def restore_seed_states(model: keras.Model, states: tuple[tuple[int, ...], ...]) -> None:
    """Put back what `seed_states` saved (a no-op for a run saved without them)."""
    variables = [var for var in model.variables if var.path.endswith("seed_generator_state")]
    if states and len(states) == len(variables):
        for var, state in zip(variables, states, strict=True):
            var.assign(keras.ops.convert_to_tensor(state, dtype=var.dtype))


def dataset_info(dataset: Dataset, split: Split, config: TrainConfig) -> dict[str, Any]:
    """What the run was trained and tested on, in numbers a reader can check against the source."""

    def counts(labels: Any) -> dict[str, int]:
        return {code: int((labels == i).sum()) for i, code in enumerate(CODES)}

    return {
        "source": dataset.source,
        "path": config.data_path,
        "format": config.data_format,
        "images": len(dataset),
        "image_size": dataset.image_size[0],
        "class_counts": counts(dataset.labels),
        "split_sizes": {name: len(idx) for name, idx in split.parts().items()},
        "split_class_counts": {name: counts(dataset.labels[idx]) for name, idx in split.parts().items()},
        "grouped": split.grouped,
        "note": split.note,
    }


def _git(*args: str) -> str | None:
    """Ask git about the checkout Skin Pamper's own source lives in (None for an installed wheel)."""
    source = Path(__file__).resolve().parent
    try:
        done = subprocess.run(
            ["git", "-C", str(source), *args], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _device() -> str:
    """The accelerator Keras trains on, or the CPU."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            return tf.config.experimental.get_device_details(gpus[0]).get("device_name", gpus[0].name)
    elif backend == "torch":
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    elif backend == "jax":
        import jax

        if jax.default_backend() != "cpu":
            return jax.devices()[0].device_kind
    return f"CPU ({platform.machine()}, {os.cpu_count()} cores)"


def environment_info() -> dict[str, Any]:
    """Software and hardware that produced the run; deliberately free of host and user names."""
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    commit = _git("rev-parse", "HEAD")
    return {
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()} {platform.machine()}",
        "packages": versions,
        "keras_backend": keras.backend.backend(),
        "device": _device(),
        "git_commit": commit,
        "git_dirty": None if commit is None else bool(_git("status", "--porcelain")),
    }
