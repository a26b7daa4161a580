"""Response bodies of the service; the OpenAPI document and its fuzz test are generated from these."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class ClassProbability(BaseModel):
    class_: str = Field(alias="class", description="HAM10000 code")
    probability: float


class ImagePrediction(BaseModel):
    image: str = Field(description="file name as uploaded")
    top_class: str
    top_probability: float
    probabilities: dict[str, float] = Field(description="every class, in canonical order")
    top_k: list[ClassProbability]
    calibrated: bool = Field(description="probabilities use the temperature fitted on the run's val split")
    tta: bool
    with_metadata: bool = Field(description="the patient's age, sex or site were combined with the image")
    status: Literal["ok", "unfamiliar", "uncertain", "out_of_distribution", "unchecked"] = Field(
        description="out_of_distribution: not a dermoscopy image (the dermoscopy detector's log-odds above "
        "its threshold; models saved before it: the OOD score above its threshold), refused; uncertain: "
        "the image model's top probability is below the confidence threshold; unfamiliar: dermoscopy "
        "unlike the training images (OOD score above its threshold), answered with a warning; "
        "unchecked: the model was saved without an OOD detector"
    )
    warning: str | None = Field(description="the sentence to show with the status; null for ok")
    ood_score: float | None = Field(
        description="Mahalanobis distance of the image's features; null: unchecked"
    )
    ood_threshold: float | None
    confidence: float | None = Field(description="top calibrated probability of the image alone")
    confidence_threshold: float | None
    not_dermoscopy: float | None = Field(
        description="log-odds that the image is not dermoscopy; null: the model has no dermoscopy detector"
    )
    not_dermoscopy_threshold: float | None
    melanoma_not_ruled_out: bool | None = Field(
        description="p(mel) is at or above the melanoma rule-out cut (fitted on validation for 90% "
        "sensitivity), whatever the top class; null: the model has no such cut"
    )
    melanoma_threshold: float | None
    melanoma_sensitivity: float | None = Field(description="of the cut, on the run's validation split")
    melanoma_specificity: float | None
    model_id: str
    note: str


class PredictResponse(BaseModel):
    model_id: str
    note: str
    predictions: list[ImagePrediction]


class ClassInfo(BaseModel):
    code: str
    name: str
    malignant: bool


class ModelInfo(BaseModel):
    model_id: str
    architecture: str
    backend: Literal["keras", "onnx"]
    classes: list[ClassInfo]
    image_size: int
    fit: str
    calibrated: bool
    temperature: float | None
    tta: bool
    gradcam: bool = Field(description="POST /v1/explain is available (needs the Keras run folder)")
    metrics: dict[str, Any] = Field(description="the run's test-split summary, as in metrics.json")
    metadata_model: dict[str, Any] | None = Field(
        description="age/sex/site model fitted on the run's training split (its sexes and sites are the "
        "values /v1/predict accepts); null: images only"
    )
    abstention: dict[str, Any] | None = Field(
        description="OOD and confidence thresholds fitted on the run's validation split, and the targets "
        "they were chosen for; null: the model has no OOD detector (every status is unchecked)"
    )
    note: str


class Status(BaseModel):
    status: str


class ErrorBody(BaseModel):
    detail: str
