"""A Run folder: everything needed to understand, resume, evaluate or serve one training run.

    config.json       the resolved TrainConfig
    split.json        image ids of train/val/test (ids, not row numbers, survive source re-ordering)
    dataset.json      source, content digest, image count and size, class counts, split sizes, lesion
                      grouping (the model card names the source without its folders)
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
    dermoscopy_detector.npz  weights of the dermoscopy-vs-not detector on the same features
                      (scoring/dermoscopy.py); absent from runs saved before it: they refuse on the OOD
                      distance alone
    abstention.json   OOD, dermoscopy, confidence and melanoma thresholds fitted on the validation
                      split, and the targets

Every file is written to a temporary name and renamed into place, so an interrupted run never leaves a
half-written file; state.json is written last in each epoch and is what resume trusts. Temporaries a
killed process left behind are swept when the run is opened.

Every read goes through this class, and damage of any kind (a file missing, empty, cut short, or of
the wrong shape) is a ConfigError naming the file, whichever command meets it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import platform
import subprocess
import zipfile
from dataclasses import asdict, dataclass, fields
from importlib import metadata
from pathlib import Path
from typing import Any

import keras
import numpy as np

from skinpamper.atomic import replace_into, sweep_temporaries, write_json_atomic, write_text_atomic
from skinpamper.classes import CODES
from skinpamper.data.dataset import Dataset
from skinpamper.data.splits import Split
from skinpamper.errors import ConfigError, SkinPamperError
from skinpamper.scoring.abstention import Abstention
from skinpamper.scoring.chain import Engine
from skinpamper.scoring.dermoscopy import DermoscopyDetector
from skinpamper.scoring.metadata_model import MetadataModel
from skinpamper.scoring.ood import OODDetector
from skinpamper.training.config import TrainConfig

CONFIG, SPLIT, DATASET, ENVIRONMENT = "config.json", "split.json", "dataset.json", "environment.json"
HISTORY, STATE, METRICS = "history.csv", "state.json", "metrics.json"
CALIBRATION, METADATA_MODEL = "calibration.json", "metadata_model.json"
BEST_MODEL, LAST_MODEL = "model.keras", "last.keras"
OOD_DETECTOR, ABSTENTION = "ood_detector.npz", "abstention.json"
DERMOSCOPY_DETECTOR = "dermoscopy_detector.npz"
MEMBERS = "members.json"  # an ensemble's runs, written by skinpamper.training.ensemble
# Files only a run has: a folder holding any of them holds a run (perhaps a half-made one). Not
# metrics.json, which an evaluation's folder has too (evaluating twice into one folder is fine).
RUN_FILES = (CONFIG, SPLIT, DATASET, ENVIRONMENT, STATE, HISTORY, BEST_MODEL, LAST_MODEL, CALIBRATION)
RUN_FILES += (METADATA_MODEL, MEMBERS)
METRIC_PARTS = ("val", "test")
_METRIC_KEYS = ("n", "accuracy", "balanced_accuracy", "per_class_recall")
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
        if holds_run(run.path):
            raise ConfigError(f"{run.path}: already holds a run; resume it or choose another output folder")
        run.path.mkdir(parents=True, exist_ok=True)
        return run

    @classmethod
    def open(cls, path: str | Path) -> Run:
        """An existing run folder (one with config.json); temporaries of killed writers are swept."""
        run = cls(path)
        if not (run.path / CONFIG).is_file():
            raise ConfigError(f"{run.path}: not a Skin Pamper run folder (no {CONFIG})")
        sweep_temporaries(run.path)
        return run

    def file(self, name: str) -> Path:
        return self.path / name

    def _damaged(self, name: str, why: str) -> ConfigError:
        return ConfigError(f"{self.file(name)}: damaged ({why}); restore it or train the run again")

    def _json(self, name: str) -> dict[str, Any]:
        """The JSON object in one of the run's files; any damage is a ConfigError naming it."""
        path = self.file(name)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: missing from the run folder") from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot be read ({exc.strerror or exc})") from None
        except UnicodeDecodeError:
            raise self._damaged(name, "not UTF-8 text") from None
        except json.JSONDecodeError as exc:
            raise self._damaged(name, f"not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise self._damaged(name, f"a JSON {type(data).__name__} where an object belongs")
        return data

    def write_config(self, config: TrainConfig) -> None:
        """config.json, with the data path made absolute (a run can then be resumed or evaluated from
        any folder) and the path as it was given kept beside it."""
        path = config.data_path
        if path is not None and config.data_path_given is None:
            absolute = str(Path(path).expanduser().resolve())
            config = config.replace(data_path=absolute, data_path_given=path)
        write_json_atomic(self.file(CONFIG), config.to_dict())

    def config(self) -> TrainConfig:
        data = self._json(CONFIG)
        data.setdefault("colour_constancy", False)  # runs saved before the option existed had no such layer
        return TrainConfig.from_dict(data, source=str(self.file(CONFIG)))

    def data_path(self) -> str | None:
        """Where the run's data was read from; a relative path (runs saved before paths were made
        absolute) must be found from the current folder."""
        path = self.config().data_path
        if path is not None and not Path(path).expanduser().is_absolute() and not Path(path).exists():
            raise ConfigError(
                f"{self.file(CONFIG)}: data_path {path!r} is relative to the folder the run was trained "
                "from and is not found from here; run the command from that folder (train --resume and "
                "ensemble also take the path again with --data)"
            )
        return path

    def write_split(self, split: Split, dataset: Dataset) -> None:
        replace_into(self.file(SPLIT), lambda p: split.save(p, dataset))

    def split_ids(self) -> dict[str, Any]:
        """split.json as saved: image ids of each part (runs share a split when these are equal)."""
        return self._json(SPLIT)

    def split(self, dataset: Dataset) -> Split:
        return Split.from_ids(self.split_ids(), dataset, str(self.file(SPLIT)))

    def write_state(self, state: RunState) -> None:
        write_json_atomic(self.file(STATE), asdict(state))

    def state(self) -> RunState:
        """The saved state, or a fresh one when no epoch has finished yet."""
        if not self.file(STATE).exists():
            return RunState()
        saved = self._json(STATE)
        kinds = {"epoch": int, "best_epoch": int, "stopped_early": bool, "finished": bool}
        wrong = [
            key
            for key, kind in kinds.items()
            if key in saved and (not isinstance(saved[key], kind) or (kind is int and saved[key] is True))
        ]
        unknown = sorted(set(saved) - {f.name for f in fields(RunState)})
        score = saved.get("best_score")
        if wrong or unknown or not (score is None or (_is_number(score) and math.isfinite(score))):
            raise self._damaged(STATE, f"unexpected values of {', '.join(wrong + unknown) or 'best_score'}")
        try:
            saved["seed_states"] = tuple(tuple(int(v) for v in s) for s in saved.get("seed_states", ()))
        except (TypeError, ValueError):
            raise self._damaged(STATE, "seed_states is not lists of integers") from None
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
        try:
            with path.open(encoding="utf-8-sig", newline="") as handle:
                rows = list(csv.DictReader(handle))
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise self._damaged(HISTORY, f"not a readable CSV: {exc}") from None
        history = []
        for line, row in enumerate(rows, start=2):
            # A column added in a later version is empty in older runs' rows: NaN, not a crash on resume.
            # A missing cell (None) or extra ones (key None) mean the file was cut or garbled.
            if None in row or None in row.values() or "epoch" not in row:
                raise self._damaged(HISTORY, f"line {line} does not have the header's {len(row)} columns")
            try:
                history.append({k: int(v) if k == "epoch" else float(v or "nan") for k, v in row.items()})
            except ValueError:
                raise self._damaged(HISTORY, f"line {line} holds a value that is not a number") from None
        return history

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        write_json_atomic(self.file(METRICS), metrics)

    def metrics(self) -> dict[str, Any]:
        """{"val": ..., "test": ...} of model.keras (and "with_metadata": the same two), shape checked."""
        metrics = self._json(METRICS)
        fused = metrics.get("with_metadata", {})
        if not isinstance(fused, dict):
            raise self._damaged(METRICS, "with_metadata is not a table of scores")
        scored = [(part, metrics.get(part)) for part in METRIC_PARTS]
        scored += [(f"with_metadata {part}", fused.get(part)) for part in METRIC_PARTS] if fused else []
        for name, part in scored:
            if not isinstance(part, dict) or not all(key in part for key in _METRIC_KEYS):
                raise self._damaged(METRICS, f"no {name} scores with {', '.join(_METRIC_KEYS)}")
            if not isinstance(part["per_class_recall"], dict):
                raise self._damaged(METRICS, f"{name} per_class_recall is not a table")
        return metrics

    def write_calibration(self, record: dict[str, Any]) -> None:
        write_json_atomic(self.file(CALIBRATION), record)

    def calibration(self) -> dict[str, Any] | None:
        """The temperature fitted on the validation split and ECE before/after; None for a run without."""
        if not self.file(CALIBRATION).exists():
            return None
        record = self._json(CALIBRATION)
        temperature = record.get("temperature")
        if not (_is_number(temperature) and math.isfinite(temperature) and temperature > 0):
            raise self._damaged(CALIBRATION, f"temperature {temperature!r} is not a positive number")
        return record

    def temperature(self) -> float | None:
        """T to apply to the best model's probabilities at prediction time (None: leave them as they are)."""
        record = self.calibration()
        return None if record is None else float(record["temperature"])

    def write_metadata_model(self, model: MetadataModel) -> None:
        write_json_atomic(self.file(METADATA_MODEL), model.to_dict())

    def metadata_model(self) -> MetadataModel | None:
        """The run's age/sex/site model; None for data without such metadata, or runs made before it."""
        if not self.file(METADATA_MODEL).exists():
            return None
        return MetadataModel.from_dict(self._json(METADATA_MODEL), str(self.file(METADATA_MODEL)))

    def write_abstention(
        self, detector: OODDetector, abstention: Abstention, dermoscopy: DermoscopyDetector | None = None
    ) -> None:
        """The detectors first: abstention.json is what says a run has them, so it is written last."""
        replace_into(self.file(OOD_DETECTOR), detector.save)
        if dermoscopy is not None:
            replace_into(self.file(DERMOSCOPY_DETECTOR), dermoscopy.save)
        write_json_atomic(self.file(ABSTENTION), abstention.to_dict())

    def dermoscopy_detector(self) -> DermoscopyDetector | None:
        """The dermoscopy-vs-not detector; None for a run saved before it (or without thresholds)."""
        if not (self.file(ABSTENTION).exists() and self.file(DERMOSCOPY_DETECTOR).exists()):
            return None
        return DermoscopyDetector.load(self.file(DERMOSCOPY_DETECTOR))

    def abstention(self) -> tuple[OODDetector, Abstention] | None:
        """The run's OOD detector and abstention rules; None for a run saved before they existed."""
        if not self.file(ABSTENTION).exists():
            return None
        rules = Abstention.from_dict(self._json(ABSTENTION), str(self.file(ABSTENTION)))
        return OODDetector.load(self.file(OOD_DETECTOR)), rules

    def serving_model(self, model: keras.Model) -> keras.Model:
        """`model` with the run's OOD score as a second output (images -> [probabilities, ood_score]),
        and the dermoscopy detector's log-odds as a third where the run has one; `model` itself for a
        run without a detector."""
        saved = self.abstention()
        if saved is None:
            return model
        from skinpamper.models.ood_head import with_ood_score

        dermoscopy = self.dermoscopy_detector()
        linear = None if dermoscopy is None else (dermoscopy.weights, dermoscopy.bias)
        return with_ood_score(model, saved[0].means, saved[0].projections, linear)

    def engine(self, model: keras.Model) -> Engine:
        """The inference chain's engine (`scoring.chain`): `serving_model(model)` as a function of images."""
        serving = self.serving_model(model)
        # predict_on_batch calls the compiled predict function directly: ~3 ms for one image where
        # model.predict spends ~50 ms building a dataset and a progress loop.
        if len(serving.outputs) == 1:  # saved before OOD detection existed
            return lambda images: (np.asarray(serving.predict_on_batch(images)), None)

        def engine(images: np.ndarray) -> tuple[np.ndarray, ...]:
            return tuple(np.asarray(output) for output in serving.predict_on_batch(images))

        return engine

    def write_dataset_info(self, dataset: Dataset, split: Split, config: TrainConfig) -> None:
        write_json_atomic(self.file(DATASET), dataset_info(dataset, split, config))

    def write_environment(self, **training: Any) -> None:
        """environment.json: the software and hardware, plus how training used them (e.g. precision)."""
        write_json_atomic(self.file(ENVIRONMENT), {**environment_info(), **training})

    def add_to_environment(self, **training: Any) -> None:
        """Add what is only known once the model is compiled (e.g. whether Keras chose XLA)."""
        write_json_atomic(self.file(ENVIRONMENT), {**self.environment(), **training})

    def environment(self) -> dict[str, Any]:
        """environment.json: the software and hardware, plus how training used them."""
        return self._json(ENVIRONMENT)

    def training_precision(self) -> str:
        """The precision training ran in, as environment.json records it (float32 where it does not):
        a resumed run must load last.keras in it, else a float16 run loses its loss scaling."""
        from skinpamper.training.precision import POLICIES

        recorded = self.environment().get("precision", "float32")
        if recorded not in POLICIES:
            raise self._damaged(ENVIRONMENT, f"precision {recorded!r} is none of {', '.join(POLICIES)}")
        return recorded

    def save_model(self, model: keras.Model, name: str) -> None:
        replace_into(self.file(name), model.save)

    def model_file(self, name: str = BEST_MODEL) -> Path:
        """The path of a saved model; ConfigError when the run folder lacks it."""
        path = self.file(name)
        if not path.is_file():
            raise ConfigError(f"{path}: missing from the run folder")
        return path

    def load_model(self, name: str = BEST_MODEL) -> keras.Model:
        """A saved model; registered custom models and losses are imported first so they deserialise
        (model.keras keeps its compiled loss, e.g. a logit-adjusted one)."""
        import skinpamper.training.finetune
        import skinpamper.training.losses  # noqa: F401 (registers LogitAdjustedCrossEntropy with Keras)
        from skinpamper.models import list_models

        list_models()
        path = self.model_file(name)
        try:
            with zipfile.ZipFile(path) as archive:  # a .keras file is a zip; check every member's CRC
                broken = archive.testzip()
        except (OSError, zipfile.BadZipFile, EOFError):
            raise self._damaged(name, "not a complete .keras archive: empty or cut short") from None
        if broken is not None:
            raise self._damaged(name, f"its member {broken} fails its checksum")
        try:
            return keras.models.load_model(path)
        except SkinPamperError:
            raise
        except Exception as exc:  # Keras raises whatever its deserialisers meet in a garbled archive
            raise self._damaged(name, f"Keras cannot load it: {str(exc).splitlines()[0][:200]}") from None


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def holds_run(folder: str | Path) -> bool:
    """Whether `folder` holds a run's own files (a finished run, or one half made)."""
    return any((Path(folder) / name).exists() for name in RUN_FILES)


def refuse_run_folder(folder: str | Path, outputs: str) -> None:
    """ConfigError when `folder` holds a run: `outputs` written there would replace the run's own
    (an evaluation's metrics.json over the run's, which predict, compare and resume read)."""
    if holds_run(folder):
        raise ConfigError(
            f"{folder}: holds a training run, and {outputs} written there would replace its own; choose "
            f"another folder, e.g. {Path(folder) / 'evaluation'}"
        )


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
        "digest": dataset_digest(dataset),
        "format": config.data_format,
        "images": len(dataset),
        "image_size": dataset.image_size[0],
        "class_counts": counts(dataset.labels),
        "split_sizes": {name: len(idx) for name, idx in split.parts().items()},
        "split_class_counts": {name: counts(dataset.labels[idx]) for name, idx in split.parts().items()},
        "grouped": split.grouped,
        "note": split.note,
    }


def dataset_digest(dataset: Dataset) -> str:
    """SHA-256 of the decoded images and labels: names the data a run saw without naming where it lay.

    Anyone loading the same files at the same size and fit gets the same digest, wherever they keep
    them; hashing the arrays in place costs ~1 s for HAM10000 at 224 px.
    """
    digest = hashlib.sha256(memoryview(np.ascontiguousarray(dataset.images)).cast("B"))
    digest.update(np.ascontiguousarray(dataset.labels, dtype=np.int64).tobytes())
    return f"sha256:{digest.hexdigest()}"


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
