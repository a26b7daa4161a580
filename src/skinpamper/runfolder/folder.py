"""RunFolder: every read and write of a run folder's files, without Keras.

Reports, the notebook API, the ONNX service and the model card read a run through this class;
`training.run.Run` adds loading and saving Keras models to it. Each JSON file is parsed, migrated from
the run's format (migrations.py) and checked against its schema (schemas.py); damage of any kind (a
file empty, cut short, not JSON, of the wrong shape) is one ConfigError naming the file and the field.
Every file is written to a temporary name and renamed into place, so an interrupted run never leaves a
half-written file; temporaries a killed process left behind are swept when the run is opened.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Self

import pandas as pd
from pydantic import ValidationError

from skinpamper import __version__
from skinpamper.atomic import replace_into, sweep_temporaries, write_json_atomic, write_text_atomic
from skinpamper.data.dataset import Dataset
from skinpamper.data.splits import Split
from skinpamper.errors import ConfigError, describe
from skinpamper.runfolder.files import (
    ABSTENTION,
    BEST_MODEL,
    CALIBRATION,
    CONFIG,
    DERMOSCOPY_DETECTOR,
    ENVIRONMENT,
    HISTORY,
    HISTORY_COLUMNS,
    MEMBERS,
    METADATA_MODEL,
    METRICS,
    OOD_DETECTOR,
    RUN_INFO,
    RUN_ONLY_FILES,
    SPLIT,
    STATE,
)
from skinpamper.runfolder.migrations import FORMAT_VERSION, migrate
from skinpamper.runfolder.schemas import validate
from skinpamper.runfolder.state import RunState
from skinpamper.scoring.abstention import Abstention
from skinpamper.scoring.dermoscopy import DermoscopyDetector
from skinpamper.scoring.metadata_model import MetadataModel
from skinpamper.scoring.ood import OODDetector


class RunFolder:
    """One run folder; methods read and write its files by what they hold, never by name."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()

    @classmethod
    def create(cls, path: str | Path) -> Self:
        """A new run folder recording the current format; refuses one that already holds a run."""
        run = cls(path)
        if holds_run(run.path):
            raise ConfigError(f"{run.path}: already holds a run; resume it or choose another output folder")
        run.path.mkdir(parents=True, exist_ok=True)
        run.write(RUN_INFO, {"format_version": FORMAT_VERSION, "written_by": f"skinpamper {__version__}"})
        return run

    @classmethod
    def open(cls, path: str | Path) -> Self:
        """An existing run folder (one with config.json); temporaries of killed writers are swept."""
        run = cls(path)
        if not (run.path / CONFIG).is_file():
            raise ConfigError(f"{run.path}: not a Skin Pamper run folder (no {CONFIG})")
        sweep_temporaries(run.path)
        return run

    def file(self, name: str) -> Path:
        return self.path / name

    def has(self, name: str) -> bool:
        return self.file(name).is_file()

    def damaged(self, name: str, why: str) -> ConfigError:
        return ConfigError(f"{self.file(name)}: damaged ({why}); restore it or train the run again")

    def format_version(self) -> int:
        """The format the run was written in: run.json's, or 0 for a run saved before it existed."""
        info = self._parse(RUN_INFO)
        if info is None:
            return 0
        version = self._check(RUN_INFO, info)["format_version"]
        if version > FORMAT_VERSION:
            raise ConfigError(
                f"{self.file(RUN_INFO)}: format_version {version} is newer than this Skin Pamper "
                f"({__version__}) reads ({FORMAT_VERSION}); upgrade skinpamper"
            )
        return version

    def _parse(self, name: str) -> dict[str, Any] | None:
        """The JSON object in `name` as written, None when absent; any damage is a ConfigError."""
        path = self.file(name)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot be read ({exc.strerror or exc})") from None
        except UnicodeDecodeError:
            raise self.damaged(name, "not UTF-8 text") from None
        except json.JSONDecodeError as exc:
            raise self.damaged(name, f"not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise self.damaged(name, f"a JSON {type(data).__name__} where an object belongs")
        return data

    def _check(self, name: str, content: dict[str, Any]) -> dict[str, Any]:
        try:
            return validate(name, content)
        except ValidationError as exc:
            raise self.damaged(name, describe(exc)) from None

    def read(self, name: str) -> dict[str, Any] | None:
        """A JSON file of the run in the current format, checked against its schema; None when absent."""
        content = self._parse(name)
        if content is None:
            return None
        return self._check(name, migrate(name, content, self.format_version()))

    def require(self, name: str) -> dict[str, Any]:
        """`read`, for a file the caller cannot do without: its absence is a ConfigError naming it."""
        content = self.read(name)
        if content is None:
            raise ConfigError(f"{self.file(name)}: missing from the run folder")
        return content

    def write(self, name: str, content: dict[str, Any]) -> None:
        """Write a JSON file atomically after checking it against its schema: what is written reads back."""
        self._check(name, content)
        write_json_atomic(self.file(name), content)

    def config_record(self) -> dict[str, Any]:
        """config.json as saved (TrainConfig in training checks and completes every setting)."""
        return self.require(CONFIG)

    def data_path(self) -> str | None:
        """Where the run's data was read from; a relative path (runs saved before paths were made
        absolute) must be found from the current folder."""
        path = self.config_record().get("data_path")
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
        return self.require(SPLIT)

    def split(self, dataset: Dataset) -> Split:
        return Split.from_ids(self.split_ids(), dataset, str(self.file(SPLIT)))

    def write_state(self, state: RunState) -> None:
        self.write(STATE, state.to_dict())

    def state(self) -> RunState:
        """The saved state, or a fresh one when no epoch has finished yet."""
        saved = self.read(STATE)
        return RunState() if saved is None else RunState.from_dict(saved)

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
            raise self.damaged(HISTORY, f"not a readable CSV: {exc}") from None
        version, history = self.format_version(), []
        for line, row in enumerate(rows, start=2):
            # A missing cell (None) or extra ones (key None) mean the file was cut or garbled.
            if None in row or None in row.values() or "epoch" not in row:
                raise self.damaged(HISTORY, f"line {line} does not have the header's {len(row)} columns")
            try:
                numbers = {k: int(v) if k == "epoch" else float(v or "nan") for k, v in row.items()}
            except ValueError:
                raise self.damaged(HISTORY, f"line {line} holds a value that is not a number") from None
            history.append(migrate(HISTORY, numbers, version))
        missing = [c for c in HISTORY_COLUMNS if history and c not in history[0]]
        if missing:
            raise self.damaged(HISTORY, f"no column {', '.join(missing)}")
        return history

    def history_frame(self) -> pd.DataFrame | None:
        """history.csv as a table for plots, None when the run has no finished epoch."""
        rows = self.history()
        return pd.DataFrame(rows) if rows else None

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        self.write(METRICS, metrics)

    def metrics(self) -> dict[str, Any]:
        """{"val": ..., "test": ...} of model.keras (and "with_metadata": the same two), shape checked."""
        return self.require(METRICS)

    def write_calibration(self, record: dict[str, Any]) -> None:
        self.write(CALIBRATION, record)

    def calibration(self) -> dict[str, Any] | None:
        """The temperature fitted on the validation split and ECE before/after; None for a run without."""
        return self.read(CALIBRATION)

    def temperature(self) -> float | None:
        """T to apply to the best model's probabilities at prediction time (None: leave them as they are)."""
        record = self.calibration()
        return None if record is None else float(record["temperature"])

    def write_metadata_model(self, model: MetadataModel) -> None:
        write_json_atomic(self.file(METADATA_MODEL), model.to_dict())

    def metadata_model(self) -> MetadataModel | None:
        """The run's age/sex/site model; None for data without such metadata, or runs made before it."""
        saved = self._parse(METADATA_MODEL)
        return None if saved is None else MetadataModel.from_dict(saved, str(self.file(METADATA_MODEL)))

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
        if not (self.has(ABSTENTION) and self.has(DERMOSCOPY_DETECTOR)):
            return None
        return DermoscopyDetector.load(self.file(DERMOSCOPY_DETECTOR))

    def abstention_rules(self) -> Abstention | None:
        """The run's abstention thresholds alone (no detector); None for a run saved before OOD detection."""
        saved = self._parse(ABSTENTION)
        return None if saved is None else Abstention.from_dict(saved, str(self.file(ABSTENTION)))

    def abstention(self) -> tuple[OODDetector, Abstention] | None:
        """The run's OOD detector and abstention rules; None for a run saved before they existed."""
        rules = self.abstention_rules()
        return None if rules is None else (OODDetector.load(self.file(OOD_DETECTOR)), rules)

    def write_members(self, members: list[dict[str, Any]]) -> None:
        self.write(MEMBERS, {"members": members})

    def members(self) -> list[dict[str, Any]]:
        """An ensemble's member runs with their seeds and test scores; empty for a single run."""
        saved = self.read(MEMBERS)
        return [] if saved is None else saved["members"]

    def environment(self) -> dict[str, Any]:
        """environment.json: the software and hardware, plus how training used them."""
        return self.require(ENVIRONMENT)

    def add_to_environment(self, **training: Any) -> None:
        """Add what is only known once the model is compiled (e.g. whether Keras chose XLA)."""
        self.write(ENVIRONMENT, {**self.environment(), **training})

    def training_precision(self) -> str:
        """The precision training ran in: a resumed run must load last.keras in it, else a float16 run
        loses its loss scaling."""
        return self.environment()["precision"]

    def model_file(self, name: str = BEST_MODEL) -> Path:
        """The path of a saved model; ConfigError when the run folder lacks it."""
        path = self.file(name)
        if not path.is_file():
            raise ConfigError(f"{path}: missing from the run folder")
        return path


def holds_run(folder: str | Path) -> bool:
    """Whether `folder` holds a run's own files (a finished run, or one half made)."""
    return any((Path(folder) / name).exists() for name in RUN_ONLY_FILES)


def refuse_run_folder(folder: str | Path, outputs: str) -> None:
    """ConfigError when `folder` holds a run: `outputs` written there would replace the run's own
    (an evaluation's metrics.json over the run's, which predict, compare and resume read)."""
    if holds_run(folder):
        raise ConfigError(
            f"{folder}: holds a training run, and {outputs} written there would replace its own; choose "
            f"another folder, e.g. {Path(folder) / 'evaluation'}"
        )
