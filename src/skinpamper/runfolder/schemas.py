"""Declared shapes of a run folder's JSON files in the current format (migrations bring older ones here).

Validation is strict (an epoch of `true` or a temperature of `"1.5"` is damage, not something to
coerce), and unknown keys are kept where later code may add them (`extra="allow"`), refused where the
file is wholly ours and small (run.json, state.json). config.json declares only what Keras-free
readers rely on; every training setting, its default and its range are TrainConfig's
(training/config.py), which `training.run.Run.config` applies on top. metadata_model.json and
abstention.json are checked by `MetadataModel.from_dict` and `Abstention.from_dict`, which own them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from skinpamper.imaging import Fit
from skinpamper.runfolder.files import (
    CALIBRATION,
    CONFIG,
    DATASET,
    ENVIRONMENT,
    MEMBERS,
    METRICS,
    RUN_INFO,
    SPLIT,
    STATE,
)

Finite = Annotated[float, Field(allow_inf_nan=False)]
Count = Annotated[int, Field(ge=0)]
Score = float | None  # NaN or null where a class is absent from the scored images


class _Open(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")


class _Closed(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class RunInfo(_Closed):
    format_version: Count
    written_by: str  # "skinpamper 0.1.0"


class ConfigRecord(_Open):
    model: str
    image_size: Annotated[int, Field(gt=0)]
    fit: Fit
    colour_constancy: bool
    data_path: str | None = None
    data_path_given: str | None = None
    data_format: str = "auto"
    seed: int = 0


class SplitRecord(_Open):
    train: list[str]
    val: list[str]
    test: list[str]
    grouped: bool
    note: str = ""


class DatasetRecord(_Open):
    source: str
    images: Count
    image_size: Count
    path: str | None = None
    digest: str | None = None
    format: str | None = None
    class_counts: dict[str, Count] = {}
    split_sizes: dict[str, Count] = {}
    split_class_counts: dict[str, dict[str, Count]] = {}
    grouped: bool | None = None
    note: str | None = None


class EnvironmentRecord(_Open):
    precision: Literal["float32", "bfloat16", "float16"]
    python: str | None = None
    packages: dict[str, str] = {}
    keras_backend: str | None = None
    device: str | None = None
    git_commit: str | None = None
    git_dirty: bool | None = None


class StateRecord(_Closed):
    epoch: Count = 0
    best_epoch: Count = 0
    best_score: Finite | None = None
    stopped_early: bool = False
    finished: bool = False
    seed_states: list[list[int]] = []


class PartScores(_Open):
    n: Count
    accuracy: Score
    balanced_accuracy: Score
    per_class_recall: dict[str, Score]
    macro_auc: Score = None
    confusion_matrix: list[list[Count]] | None = None


class MetadataScores(_Open):
    val: PartScores
    test: PartScores


class MetricsRecord(_Open):
    val: PartScores
    test: PartScores
    with_metadata: MetadataScores | None = None
    abstention: dict[str, Any] | None = None
    subgroups: dict[str, Any] | None = None
    risk_coverage: dict[str, Any] | None = None


class CalibrationRecord(_Open):
    temperature: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    ece_before: Score = None
    ece_after: Score = None
    brier_before: Score = None
    brier_after: Score = None
    fitted_on: str | None = None
    n: Count | None = None


class Member(_Open):
    run: str
    seed: int
    test: PartScores


class MembersRecord(_Open):
    members: list[Member]


SCHEMAS: dict[str, type[BaseModel]] = {
    RUN_INFO: RunInfo,
    CONFIG: ConfigRecord,
    SPLIT: SplitRecord,
    DATASET: DatasetRecord,
    ENVIRONMENT: EnvironmentRecord,
    STATE: StateRecord,
    METRICS: MetricsRecord,
    CALIBRATION: CalibrationRecord,
    MEMBERS: MembersRecord,
}


def validate(name: str, data: dict[str, Any]) -> dict[str, Any]:
    """`data` checked against `name`'s schema, as plain JSON again (the keys it had, values checked);
    raises ValidationError."""
    return SCHEMAS[name].model_validate(data).model_dump(exclude_unset=True)
