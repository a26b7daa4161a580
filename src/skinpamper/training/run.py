"""Run: a run folder (`skinpamper.runfolder.RunFolder`) whose models Keras loads and saves.

Everything else about the folder (its files' names, schemas, format version and migrations) is the
Keras-free RunFolder's; this module adds what needs Keras or the training settings: the TrainConfig of
config.json, the .keras models and the serving model with its OOD output, the environment record and
the dropout seed states a resume restores.
"""

from __future__ import annotations

import hashlib
import platform
import subprocess
import zipfile
from importlib import metadata
from pathlib import Path
from typing import Any

import keras
import numpy as np

from skinpamper.atomic import replace_into
from skinpamper.classes import CODES
from skinpamper.data.dataset import Dataset
from skinpamper.data.splits import Split
from skinpamper.errors import SkinPamperError
from skinpamper.runfolder import RunFolder
from skinpamper.runfolder.files import BEST_MODEL, CONFIG, DATASET, ENVIRONMENT
from skinpamper.scoring.chain import Engine
from skinpamper.training.config import TrainConfig
from skinpamper.training.devices import device_name

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


class Run(RunFolder):
    """One run folder, with its settings as a TrainConfig and its models as Keras models."""

    def write_config(self, config: TrainConfig) -> None:
        """config.json, with the data path made absolute (a run can then be resumed or evaluated from
        any folder) and the path as it was given kept beside it."""
        path = config.data_path
        if path is not None and config.data_path_given is None:
            absolute = str(Path(path).expanduser().resolve())
            config = config.replace(data_path=absolute, data_path_given=path)
        self.write(CONFIG, config.to_dict())

    def config(self) -> TrainConfig:
        return TrainConfig.from_dict(self.config_record(), source=str(self.file(CONFIG)))

    def serving_model(self, model: keras.Model) -> keras.Model:
        """`model` with the run's OOD score as a second output (images -> [probabilities, ood_score]),
        and the dermoscopy detector's log-odds as a third where the run has one; `model` itself for a
        run without a detector."""
        detectors = self.detector_weights()
        if detectors is None:
            return model
        from skinpamper.models.ood_head import with_ood_score

        return with_ood_score(model, *detectors)

    def detector_weights(self) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, float] | None] | None:
        """The arguments the detectors take after the features (`models.ood_head.detector_outputs`):
        class means, projections and the dermoscopy detector's (weights, bias) or None; None for a run
        without an OOD detector."""
        saved = self.abstention()
        if saved is None:
            return None
        dermoscopy = self.dermoscopy_detector()
        linear = None if dermoscopy is None else (dermoscopy.weights, dermoscopy.bias)
        return saved[0].means, saved[0].projections, linear

    def engine(self, model: keras.Model) -> Engine:
        """The inference chain's engine (`scoring.chain`): `serving_model(model)` as a function of images."""
        serving = self.serving_model(model)
        # predict_on_batch calls the compiled predict function directly: ~3 ms for one image where
        # model.predict spends ~50 ms building a dataset and a progress loop.
        if len(serving.outputs) == 1:  # a run without an OOD detector
            return lambda images: (np.asarray(serving.predict_on_batch(images)), None)

        def engine(images: np.ndarray) -> tuple[np.ndarray, ...]:
            return tuple(np.asarray(output) for output in serving.predict_on_batch(images))

        return engine

    def write_dataset_info(self, dataset: Dataset, split: Split, config: TrainConfig) -> None:
        self.write(DATASET, dataset_info(dataset, split, config))

    def write_environment(self, **training: Any) -> None:
        """environment.json: the software and hardware, plus how training used them (e.g. precision)."""
        self.write(ENVIRONMENT, {**environment_info(), **training})

    def save_model(self, model: keras.Model, name: str) -> None:
        replace_into(self.file(name), model.save)

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
            raise self.damaged(name, "not a complete .keras archive: empty or cut short") from None
        if broken is not None:
            raise self.damaged(name, f"its member {broken} fails its checksum")
        try:
            return keras.models.load_model(path)
        except SkinPamperError:
            raise
        except Exception as exc:  # Keras raises whatever its deserialisers meet in a garbled archive
            raise self.damaged(name, f"Keras cannot load it: {str(exc).splitlines()[0][:200]}") from None


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
        "device": device_name(),
        "git_commit": commit,
        "git_dirty": None if commit is None else bool(_git("status", "--porcelain")),
    }
