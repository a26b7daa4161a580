"""Predictor: load a model once, from a run folder (Keras) or its ONNX export, and predict many images.

Every image goes through exactly the training preprocessing (`imaging.load_image` at the run's size and
fit; the model rescales inside), then the one inference chain `evaluate` uses too (`scoring.chain`):
optionally the 8-view TTA, the run's temperature, when the caller gives the patient's age, sex or site
and the run has a metadata model Bayes' rule with what they say (`metadata_model`), and a status
(`scoring.abstention`) from the model's OOD score, read from the same forward pass as its
probabilities, and its confidence. The ONNX path imports onnxruntime and nothing of Keras or
TensorFlow, so `pip install 'skinpamper[serve]'` can run it; what it needs to know about the run (size,
fit, temperature, metadata model, thresholds, metrics) travels inside the ONNX file, and the OOD
detector inside its graph.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np

from skinpamper import NOT_A_DIAGNOSIS
from skinpamper.classes import CODES
from skinpamper.errors import ConfigError, ImageError
from skinpamper.imaging import FITS, MAX_PIXELS, load_image
from skinpamper.reports.model_card import model_card
from skinpamper.runfolder.files import METRICS
from skinpamper.scoring.abstention import UNCHECKED, WARNINGS, Abstention
from skinpamper.scoring.chain import Chain, Engine, Scored
from skinpamper.scoring.metadata_model import MetadataModel, PatientInfo, metadata_frame

if TYPE_CHECKING:
    import pandas as pd

    from skinpamper.training.run import Run

ONNX_METADATA_KEY = "skinpamper"  # the ONNX metadata_props entry holding the ModelCard as JSON
OOD_OUTPUT = "ood_score"  # the ONNX output holding the OOD score, beside "probabilities"
DERMOSCOPY_OUTPUT = "not_dermoscopy"  # the dermoscopy detector's log-odds, in exports since it existed
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
_SUMMARY_KEYS = ("n", "accuracy", "balanced_accuracy", "macro_auc", "per_class_recall")


@dataclass(frozen=True)
class ModelCard:
    """What a served model is and how its inputs must be prepared; stored inside the ONNX export."""

    model_id: str  # architecture + digest of model.keras: the same weights give the same id in both formats
    architecture: str
    image_size: int
    fit: str
    temperature: float | None  # fitted on the validation split; None: probabilities are uncalibrated
    metrics: dict[str, Any] = field(default_factory=dict)  # test-split summary; empty when not recorded
    classes: tuple[str, ...] = CODES
    metadata_model: dict[str, Any] | None = None  # MetadataModel.to_dict(); None: images only
    abstention: dict[str, Any] | None = None  # Abstention.to_dict(); None: saved before OOD detection
    model_card: str | None = None  # model_card.md (reports.model_card); None: exported before it existed

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "classes": list(self.classes)}

    @property
    def uses_metadata(self) -> bool:
        return self.metadata_model is not None

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str) -> ModelCard:
        """Rebuild from `to_dict` output; refuses a model whose outputs are in another class order."""
        try:
            card = cls(**{**data, "classes": tuple(data["classes"])})
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"{source}: malformed Skin Pamper model metadata ({exc})") from None
        if card.classes != CODES:
            raise ConfigError(f"{source}: model classes {card.classes} differ from Skin Pamper's {CODES}")
        if card.fit not in FITS:
            raise ConfigError(
                f"{source}: unknown fit {card.fit!r} in the model metadata; expected one of {FITS}"
            )
        if card.metadata_model is not None:
            MetadataModel.from_dict(card.metadata_model, source)  # refuse a malformed one at load time
        if card.abstention is not None:
            Abstention.from_dict(card.abstention, source)
        return card


@dataclass(frozen=True)
class Prediction:
    """Probabilities of one image in canonical class order, and how they were made."""

    image: str  # the file's name, or the name given
    probabilities: tuple[float, ...]  # one per class, in CODES order (akiec, bcc, bkl, df, mel, nv, vasc)
    calibrated: bool  # the run's temperature was applied
    tta: bool  # the mean of the 8 flips and rotations
    model_id: str  # architecture + digest of the weights
    note: str = NOT_A_DIAGNOSIS  # research tool, not a medical device: carried by every output
    with_metadata: bool = False  # the patient's age, sex or site were combined with the image
    # ok, unfamiliar, uncertain, out_of_distribution; unchecked: the model has no detector
    status: str = UNCHECKED
    warning: str | None = WARNINGS[UNCHECKED]  # the sentence shown with the status; None for ok
    ood_score: float | None = None  # higher is stranger; unfamiliar (older runs: refused) above ood_threshold
    ood_threshold: float | None = None  # the run's; keeps ood_keep (95%) of its validation images
    confidence: float | None = None  # top image-only calibrated probability; uncertain below the threshold
    confidence_threshold: float | None = None  # the run's, for plain or TTA probabilities
    not_dermoscopy: float | None = None  # log-odds; out_of_distribution above not_dermoscopy_threshold
    not_dermoscopy_threshold: float | None = None  # None: a run saved before the dermoscopy detector
    # The melanoma rule-out cut (sensitivity and specificity as fitted on validation): p(mel) at or
    # above it means melanoma is not ruled out, whatever the top class.
    melanoma_not_ruled_out: bool | None = None
    melanoma_threshold: float | None = None  # p(mel) of the rule-out cut
    melanoma_sensitivity: float | None = None  # of the cut, on validation
    melanoma_specificity: float | None = None  # of the cut, on validation

    @property
    def top_class(self) -> str:
        return CODES[int(np.argmax(self.probabilities))]

    def top_k(self, k: int) -> list[tuple[str, float]]:
        """The k most probable classes, most probable first."""
        order = np.argsort(self.probabilities, kind="stable")[::-1][:k]
        return [(CODES[i], self.probabilities[i]) for i in order]

    def to_dict(self, k: int = len(CODES)) -> dict[str, Any]:
        """Plain JSON: the shape of one item of the service's and of `predict --format json`'s output."""
        return {
            "image": self.image,
            "top_class": self.top_class,
            "top_probability": max(self.probabilities),
            "probabilities": dict(zip(CODES, self.probabilities, strict=True)),
            "top_k": [{"class": code, "probability": p} for code, p in self.top_k(k)],
            "calibrated": self.calibrated,
            "tta": self.tta,
            "with_metadata": self.with_metadata,
            "status": self.status,
            "warning": self.warning,
            "ood_score": self.ood_score,
            "ood_threshold": self.ood_threshold,
            "confidence": self.confidence,
            "confidence_threshold": self.confidence_threshold,
            "not_dermoscopy": self.not_dermoscopy,
            "not_dermoscopy_threshold": self.not_dermoscopy_threshold,
            "melanoma_not_ruled_out": self.melanoma_not_ruled_out,
            "melanoma_threshold": self.melanoma_threshold,
            "melanoma_sensitivity": self.melanoma_sensitivity,
            "melanoma_specificity": self.melanoma_specificity,
            "model_id": self.model_id,
            "note": self.note,
        }


class Predictor:
    """A loaded model plus the preprocessing its run was trained with and the run's inference chain
    (`scoring.chain`: TTA, temperature, metadata, status), the one `evaluate` scores through too."""

    def __init__(
        self,
        engine: Engine,
        card: ModelCard,
        backend: str,
        tta: bool = False,
        max_pixels: int = MAX_PIXELS,
        model: Any = None,
    ) -> None:
        self.card, self.backend = card, backend
        self.max_pixels = max_pixels
        self.model = model  # the Keras model behind a run folder, for Grad-CAM; None for ONNX
        metadata, rules = card.metadata_model, card.abstention
        self.chain = Chain(
            engine,
            card.temperature,
            tta,
            None if metadata is None else MetadataModel.from_dict(metadata, card.model_id),
            None if rules is None else Abstention.from_dict(rules, card.model_id),
        )

    @property
    def engine(self) -> Engine:
        return self.chain.engine

    @property
    def tta(self) -> bool:
        return self.chain.tta

    @property
    def metadata(self) -> MetadataModel | None:
        return self.chain.metadata

    @property
    def abstention(self) -> Abstention | None:
        return self.chain.abstention

    @classmethod
    def load(
        cls, path: str | Path, tta: bool = False, max_pixels: int = MAX_PIXELS, threads: int = 0
    ) -> Predictor:
        """A run folder (Keras) or an exported .onnx file; `threads` caps onnxruntime's (0: its default).

        `tta` averages the 8 flips and rotations of each image. It is off by default, as in
        `skinpamper predict` and the service: 8x the time for -0.004 to +0.014 balanced accuracy in the
        benchmarks.

        Example:
            ```python
            predictor = skinpamper.Predictor.load("runs/quickstart")
            (prediction,) = predictor.predict([Path("photo.jpg")])
            print(prediction.status, prediction.top_k(3))  # the status and three likeliest classes
            predictor.predict([Path("photo.jpg"), Path("mole.png")], as_frame=True)  # a DataFrame
            ```
        """
        path = Path(path).expanduser()
        if path.is_dir():
            engine, card, model = _keras_engine(path)
            return cls(engine, card, "keras", tta, max_pixels, model)
        if path.suffix.lower() == ".onnx":
            engine, card = _onnx_engine(path, threads)
            return cls(engine, card, "onnx", tta, max_pixels)
        raise ConfigError(f"{path}: not a run folder or an .onnx file")

    @property
    def calibrated(self) -> bool:
        return self.card.temperature is not None

    def load_image(self, source: Path | bytes, name: str | None = None) -> np.ndarray:
        """Decode one file or upload to the model's input, exactly as at training time."""
        card = self.card
        return load_image(source, card.image_size, card.fit, name=name, max_pixels=self.max_pixels)

    @property
    def checks_status(self) -> bool:
        """Whether predictions get a real status: the model has an OOD detector and thresholds."""
        return self.chain.checks_status

    def probabilities(self, images_uint8: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) uint8 -> (N, 7) probabilities, with TTA and the run's temperature when set."""
        return self.chain.score(images_uint8).probabilities

    def _statuses(self, scored: Scored) -> list[dict[str, Any]]:
        """Each image's status fields, from its image-only probabilities and its detectors' scores."""
        rules, scores = self.abstention, scored.ood_scores
        if rules is None or scores is None:
            return [{"status": UNCHECKED} for _ in scored.statuses]
        shared: dict[str, Any] = {
            "ood_threshold": rules.ood_threshold,
            "confidence_threshold": rules.confidence_threshold(self.tta),
        }
        if rules.separates_unfamiliar(scored.not_dermoscopy):
            shared["not_dermoscopy_threshold"] = rules.dermoscopy_threshold
        rule = rules.rule_out(self.tta)
        if rule is not None:
            shared |= {
                "melanoma_threshold": rule.threshold,
                "melanoma_sensitivity": rule.sensitivity,
                "melanoma_specificity": rule.specificity,
            }
        rows = []
        for i, (status, row) in enumerate(zip(scored.statuses, scored.image_probabilities, strict=True)):
            fields = {**shared, "status": status, "warning": WARNINGS[status], "ood_score": float(scores[i])}
            fields["confidence"] = float(row.max())
            if "not_dermoscopy_threshold" in shared:
                fields["not_dermoscopy"] = float(scored.not_dermoscopy[i])
            if rule is not None:
                fields["melanoma_not_ruled_out"] = bool(rule.flags(row[None])[0])
            rows.append(fields)
        return rows

    def patient_evidence(
        self,
        infos: Sequence[PatientInfo | None],
        source: str = "patient metadata",
        names: Sequence[str] | None = None,
    ) -> np.ndarray | None:
        """(N, 7) log-evidence of `infos` (zeros where nothing is known), None if none knows anything.

        Refused for a model without a metadata model, and for a sex or site the model never saw, so
        a user's metadata is never silently ignored.
        """
        if all(info is None or info == PatientInfo() for info in infos):
            return None
        if self.metadata is None:
            raise ConfigError(
                f"model {self.card.model_id} was trained without age, sex and site (its data had none); "
                "predict from the image alone"
            )
        patients = metadata_frame(list(infos), None if names is None else list(names))
        return self.chain.evidence(patients, source)

    def predict_arrays(
        self, images_uint8: np.ndarray, names: Sequence[str], patients: Sequence[PatientInfo | None] = ()
    ) -> list[Prediction]:
        """Predictions for images already decoded to the model's input size, with each one's metadata
        when `patients` is given (one entry per image, None where unknown)."""
        evidence = self.patient_evidence(patients, names=names) if patients else None
        scored = self.chain.score(images_uint8, evidence)
        rows = zip(
            names, scored.probabilities, scored.with_metadata.tolist(), self._statuses(scored), strict=True
        )
        return [
            Prediction(
                name,
                tuple(float(p) for p in row),
                self.calibrated,
                self.tta,
                self.card.model_id,
                with_metadata=used,
                **status,
            )
            for name, row, used, status in rows
        ]

    @overload
    def predict(
        self,
        sources: Sequence[Path | bytes],
        names: Sequence[str] | None = None,
        patients: Sequence[PatientInfo | None] = (),
        *,
        as_frame: Literal[False] = False,
    ) -> list[Prediction]: ...

    @overload
    def predict(
        self,
        sources: Sequence[Path | bytes],
        names: Sequence[str] | None = None,
        patients: Sequence[PatientInfo | None] = (),
        *,
        as_frame: Literal[True],
    ) -> pd.DataFrame: ...

    def predict(
        self,
        sources: Sequence[Path | bytes],
        names: Sequence[str] | None = None,
        patients: Sequence[PatientInfo | None] = (),
        *,
        as_frame: bool = False,
    ) -> list[Prediction] | pd.DataFrame:
        """Decode and predict several images as one batch; an unreadable one raises ImageError.

        `as_frame=True` gives a pandas DataFrame, a row per image with the columns of
        `predict --out`'s CSV (image, top class, p_CLASS per class, status, OOD score, ...).
        """
        predictions: list[Prediction] = []
        if sources:  # np.stack refuses an empty list
            if names is None:
                names = [
                    display_name(s) if isinstance(s, Path) else f"image {i + 1}"
                    for i, s in enumerate(sources)
                ]
            labels = list(names)
            images = np.stack([self.load_image(s, n) for s, n in zip(sources, labels, strict=True)])
            predictions = self.predict_arrays(images, labels, patients)
        if as_frame:
            from skinpamper.serving.rows import prediction_frame  # rows.py imports this module

            return prediction_frame(predictions)
        return predictions

    def predict_files(
        self, paths: Sequence[Path], batch_size: int = 64, patients: dict[Path, PatientInfo] | None = None
    ) -> Iterator[Prediction | ImageError]:
        """Predict files in batches, in order; an unreadable file yields its ImageError instead.

        `patients` maps a file to its metadata; files not in it are predicted from the image alone.
        """
        patients = patients or {}
        # A bad value fails before any image is read.
        self.patient_evidence(list(patients.values()), names=[str(path) for path in patients])
        for start in range(0, len(paths), batch_size):
            decoded: list[tuple[int, np.ndarray]] = []
            results: list[Prediction | ImageError | None] = []
            for i, path in enumerate(paths[start : start + batch_size]):
                try:
                    decoded.append((i, self.load_image(path)))
                    results.append(None)
                except ImageError as exc:
                    results.append(exc)
            if decoded:
                batch = np.stack([image for _, image in decoded])
                files = [paths[start + i] for i, _ in decoded]
                infos = [patients.get(path) for path in files] if patients else []
                predictions = self.predict_arrays(batch, [display_name(f) for f in files], infos)
                for (i, _), prediction in zip(decoded, predictions, strict=True):
                    results[i] = prediction
            yield from (r for r in results if r is not None)


def display_name(path: str | Path) -> str:
    """A file's name as text that every output can hold: its bytes as UTF-8, others as `\\xe9`.

    A file name is bytes; one that is not UTF-8 (Latin-1 `caf\\xe9.jpg`) reaches Python with lone
    surrogates, which parquet, a UTF-8 CSV and strict JSON readers all refuse.
    """
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def find_images(paths: Sequence[str | Path]) -> list[Path]:
    """Files as given, and the JPEG/PNG files below each folder (sorted, recursive)."""
    found: list[Path] = []
    for entry in map(Path, paths):
        if entry.is_dir():
            # is_file: a folder named x.jpg is a folder, not an image.
            found.extend(
                sorted(p for p in entry.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            )
        else:
            found.append(entry)
    return found


def file_digest(path: Path) -> str:
    """The first 12 hex digits of the file's SHA-256: short, yet unique across any one user's runs."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:12]


def run_card(run: Run) -> ModelCard:
    """The card of a run's best model, from its config, calibration and test metrics."""
    config = run.config()
    recorded = run.read(METRICS) or {}
    test = recorded.get("test", {})
    summary = {key: test[key] for key in _SUMMARY_KEYS if key in test}
    if "with_metadata" in recorded:
        fused = recorded["with_metadata"]["test"]
        summary["with_metadata"] = {key: fused[key] for key in _SUMMARY_KEYS if key in fused}
    metadata = run.metadata_model()
    abstention = run.abstention()
    model_id = f"{config.model}-{file_digest(run.model_file())}"
    return ModelCard(
        model_id=model_id,
        architecture=config.model,
        image_size=config.image_size,
        fit=config.fit,
        temperature=run.temperature(),
        metrics=summary,
        metadata_model=None if metadata is None else metadata.to_dict(),
        abstention=None if abstention is None else abstention[1].to_dict(),
        model_card=model_card(run.path, model_id=model_id),
    )


def _keras_engine(path: Path) -> tuple[Engine, ModelCard, Any]:
    try:
        from skinpamper.training.run import Run
    except ImportError:
        raise ConfigError(
            f"{path}: a run folder needs Keras and TensorFlow: pip install 'skinpamper[train]', or serve "
            "the run's ONNX export (skinpamper export RUN --format onnx)"
        ) from None
    run = Run.open(path)
    model = run.load_model()
    return run.engine(model), run_card(run), model


def _onnx_engine(path: Path, threads: int) -> tuple[Engine, ModelCard]:
    try:
        import onnxruntime as ort
    except ImportError:
        raise ConfigError(
            f"{path}: running an ONNX model needs onnxruntime: pip install 'skinpamper[serve]'"
        ) from None
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1  # the graph is a single chain: nothing to run side by side
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors for any unreadable model
        raise ConfigError(f"{path}: not a readable ONNX model ({str(exc).splitlines()[0]})") from None
    metadata = session.get_modelmeta().custom_metadata_map.get(ONNX_METADATA_KEY)
    if metadata is None:
        raise ConfigError(f"{path}: not a Skin Pamper export (no {ONNX_METADATA_KEY!r} metadata)")
    try:
        card = ModelCard.from_dict(json.loads(metadata), str(path))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: its {ONNX_METADATA_KEY!r} metadata is not JSON ({exc})") from None
    input_name = session.get_inputs()[0].name
    outputs = [output.name for output in session.get_outputs()]
    if OOD_OUTPUT not in outputs:  # exported before OOD detection existed
        return (lambda images: (session.run([outputs[0]], {input_name: images})[0], None)), card
    if card.abstention is None:
        raise ConfigError(f"{path}: has an {OOD_OUTPUT!r} output but no thresholds in its metadata")
    # Exports made before the dermoscopy detector have no such output: they refuse on the distance.
    names = [outputs[0], OOD_OUTPUT, *([DERMOSCOPY_OUTPUT] if DERMOSCOPY_OUTPUT in outputs else [])]

    def engine(images: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(session.run(names, {input_name: images}))

    return engine, card
