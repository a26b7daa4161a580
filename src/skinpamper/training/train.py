"""`train(dataset, split, config, run_dir)` and `resume(run_dir, dataset)`: fit a registered model.

Each finished epoch is scored on the validation part (balanced accuracy and per-class recall), logged to
history.csv, saved as last.keras for resume and, when it beats the best so far, as model.keras. With
`patience` set, training stops after that many epochs without improvement, in the schedule's second
half only. The best model is then scored on validation and test, by itself and, where the data records
age, sex and site, combined with a metadata model fitted on the training split before the first epoch.

The library never prints: progress reaches the caller through the Keras callbacks it passes in, which
see the validation figures in `logs` because the run's own recorder runs first.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np

from skinpamper.classes import CODES
from skinpamper.data.dataset import Dataset
from skinpamper.data.splits import Split
from skinpamper.errors import ConfigError
from skinpamper.models import check_image_size, check_width, create_model, get_model_info, prepare_weights
from skinpamper.runfolder import RunState
from skinpamper.runfolder.files import BEST_MODEL, LAST_MODEL, METADATA_MODEL
from skinpamper.scoring.calibration import apply_temperature, calibration_record
from skinpamper.scoring.metadata_model import fit_metadata_model, fuse
from skinpamper.scoring.metrics import classification_metrics
from skinpamper.training.config import TrainConfig
from skinpamper.training.devices import check_devices, device_scope, placement_record
from skinpamper.training.distributed import data_shard, single_process
from skinpamper.training.finetune import finetune_optimizer, freeze_for_finetuning, uses_finetuning
from skinpamper.training.losses import LogitAdjustedCrossEntropy, log_prior
from skinpamper.training.pipeline import TrainData, make_eval_dataset, make_train_dataset
from skinpamper.training.precision import (
    float32_copy,
    precision_scope,
    resolve_jit_compile,
    resolve_precision,
)
from skinpamper.training.run import Run, restore_seed_states, seed_states
from skinpamper.training.trust import fit_abstention, trust_on_test

TRAIN_SCORED = 2000  # training images scored per epoch for the train/validation mean-recall curves
EVAL_BATCH = 256  # inference only: larger batches are faster and do not change the predictions


def make_optimizer(config: TrainConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """Adam (decoupled weight decay when set) with linear warm-up then cosine decay to zero; for a
    pretrained backbone, the fine-tuning Adam that trains the head first (training.finetune)."""
    learning_rate: float | keras.optimizers.schedules.LearningRateSchedule = config.learning_rate
    if config.schedule == "cosine":
        total = config.epochs * steps_per_epoch
        warmup = min(round(config.warmup_epochs * steps_per_epoch), total - 1)
        learning_rate = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0 if warmup else config.learning_rate,
            decay_steps=total - warmup,
            warmup_target=config.learning_rate if warmup else None,
            warmup_steps=warmup,
        )
    if uses_finetuning(config):
        return finetune_optimizer(config, learning_rate, steps_per_epoch)
    return keras.optimizers.Adam(learning_rate=learning_rate, weight_decay=config.weight_decay or None)


def predict_probs(model: keras.Model, images: np.ndarray) -> np.ndarray:
    """Softmax outputs for uint8 images, unaugmented, in order (all of them, whatever the distribution)."""
    with single_process():
        return model.predict(make_eval_dataset(images, EVAL_BATCH), verbose=0)


def _cross_entropy(labels: np.ndarray, probs: np.ndarray) -> float:
    """Mean sparse categorical cross-entropy, clipped as Keras clips it."""
    picked = probs[np.arange(len(labels)), labels]
    return float(-np.mean(np.log(np.clip(picked, 1e-7, 1.0))))


class EpochRecorder(keras.callbacks.Callback):
    """Scores each epoch on validation, writes history/checkpoints/state, and stops early."""

    def __init__(
        self, run: Run, dataset: Dataset, split: Split, config: TrainConfig, state: RunState
    ) -> None:
        super().__init__()
        self.run, self.config, self.state = run, config, state
        self.val_images, self.val_labels = dataset.images[split.val], dataset.labels[split.val]
        # The training split scored like validation (no augmentation) shows over-fitting as a gap in
        # mean recall; a fixed subset keeps that cheap on big splits.
        rng = np.random.default_rng(config.seed)
        scored = np.sort(rng.choice(split.train, min(TRAIN_SCORED, len(split.train)), replace=False))
        self.train_images, self.train_labels = dataset.images[scored], dataset.labels[scored]
        self.history = [row for row in run.history() if row["epoch"] <= state.epoch]
        self.started = self.learning_rate = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.started = time.perf_counter()

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        if batch == self.params["steps"] - 1:  # the rate the epoch ended on, not the next epoch's first
            self.learning_rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs if logs is not None else {}
        probs = predict_probs(self.model, self.val_images)
        scores = classification_metrics(self.val_labels, probs)
        train_scores = classification_metrics(self.train_labels, predict_probs(self.model, self.train_images))
        row = {
            "epoch": epoch + 1,
            "loss": float(logs.get("loss", np.nan)),
            "accuracy": float(logs.get("accuracy", np.nan)),
            "balanced_accuracy": train_scores["balanced_accuracy"],
            "val_loss": _cross_entropy(self.val_labels, probs),
            "val_accuracy": scores["accuracy"],
            "val_balanced_accuracy": scores["balanced_accuracy"],
            **{f"val_recall_{c}": scores["per_class_recall"][c] for c in CODES},
            "lr": self.learning_rate,
            "seconds": time.perf_counter() - self.started,
        }
        logs.update({k: v for k, v in row.items() if k not in ("epoch", "loss", "accuracy")})
        self.history.append(row)
        self.run.write_history(self.history)
        self._checkpoint(epoch + 1, scores["balanced_accuracy"])

    def _checkpoint(self, epoch: int, score: float) -> None:
        """Save model.keras if `score` is a new best, then last.keras, then state.json (the commit)."""
        state = self.state
        if state.best_score is None or score > state.best_score:
            self.run.save_model(float32_copy(self.model, lambda: _build(self.config)), BEST_MODEL)
            state = dataclasses.replace(state, best_epoch=epoch, best_score=score)
        patience = self.config.patience
        # Only in the schedule's second half: while the learning rate is high, validation scores swing
        # (a 50-epoch cosine run once stopped at epoch 11 with a best of 0.48 where the full run
        # reaches ~0.6), so stopping then would cut training off before it settles.
        settled = epoch >= self.config.epochs // 2
        stale = epoch - state.best_epoch >= patience
        stop = patience > 0 and settled and stale and epoch < self.config.epochs
        states = seed_states(self.model)
        self.state = dataclasses.replace(state, epoch=epoch, stopped_early=stop, seed_states=states)
        self.run.save_model(self.model, LAST_MODEL)
        self.run.write_state(self.state)
        if stop:
            self.model.stop_training = True


def _check_inputs(dataset: Dataset, split: Split, config: TrainConfig) -> None:
    """Refuse bad settings before a run folder is made, so a typo leaves nothing behind."""
    check_width(config.model, config.width)
    check_devices(config.devices)
    check_image_size(config.model, config.image_size)
    if config.pretrained:
        prepare_weights(config.model)
    side = config.image_size
    if dataset.image_size != (side, side):
        raise ConfigError(
            f"{dataset.source}: images are {dataset.image_size[0]}x{dataset.image_size[1]} px but the config "
            f"says image_size={side}; load the dataset at that size"
        )
    empty = [name for name, idx in split.parts().items() if len(idx) == 0]
    if empty:
        raise ConfigError(f"{dataset.source}: the {', '.join(empty)} part of the split is empty")


def _train_data(dataset: Dataset, split: Split, config: TrainConfig, start_epoch: int) -> TrainData:
    return make_train_dataset(
        dataset.images[split.train],
        dataset.labels[split.train],
        config,
        start_epoch=start_epoch,
        shard=data_shard(),
    )


def _build(config: TrainConfig) -> keras.Model:
    return create_model(
        config.model,
        image_size=config.image_size,
        pretrained=config.pretrained,
        width=config.width,
        colour_constancy=config.colour_constancy,
    )


def training_precision(config: TrainConfig) -> str:
    """The precision `config` trains in: its setting, with "auto" resolved for this machine and model."""
    return resolve_precision(config.precision, cpu_bfloat16=get_model_info(config.model).cpu_bfloat16)


def make_loss(config: TrainConfig, train_labels: np.ndarray) -> keras.losses.Loss | str:
    """Plain cross-entropy, or its logit-adjusted form whose prior comes from the training part only."""
    if config.imbalance == "logit_adjust":
        return LogitAdjustedCrossEntropy(log_prior(train_labels))
    return "sparse_categorical_crossentropy"


def _new_model(config: TrainConfig, steps_per_epoch: int, train_labels: np.ndarray) -> keras.Model:
    with precision_scope(training_precision(config)):
        model = _build(config)
    if uses_finetuning(config):
        freeze_for_finetuning(model, config)
    model.compile(
        optimizer=make_optimizer(config, steps_per_epoch),
        loss=make_loss(config, train_labels),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        jit_compile=resolve_jit_compile(config.xla),
    )
    # A tf.function whose first call creates variables is traced twice (seconds for an ImageNet backbone),
    # so nothing may be left for the first training step to create: the optimizer's slots are built
    # here, and the metric is an object, whose variables exist (the name "accuracy" is resolved late).
    model.optimizer.build(model.trainable_variables)
    return model


def _fit_and_finish(
    run: Run,
    dataset: Dataset,
    split: Split,
    config: TrainConfig,
    callbacks: Sequence[keras.callbacks.Callback],
) -> Path:
    """Continue from the run's state to the last epoch (or an early stop), then write metrics.json.

    The metadata model is fitted first, so bad metadata fails before any epoch; a run made before
    metadata models existed gets one when resumed.
    """
    if not run.has(METADATA_MODEL):
        write_metadata_model(run, dataset, split)
    state = run.state()
    if state.epoch < config.epochs and not state.stopped_early:
        data = _train_data(dataset, split, config, start_epoch=state.epoch)
        recorder = EpochRecorder(run, dataset, split, config, state)
        with device_scope(config.devices):  # the model, its optimizer and its steps on every device
            if state.epoch:
                with precision_scope(run.training_precision()):
                    model = run.load_model(LAST_MODEL)
                restore_seed_states(model, state.seed_states)
            else:
                model = _new_model(config, data.steps_per_epoch, dataset.labels[split.train])
                # What Keras resolved: "auto" on a GPU is XLA, except under a tf.distribute strategy.
                run.add_to_environment(jit_compile=bool(model.jit_compile))
            model.fit(
                data.dataset,
                epochs=config.epochs,
                initial_epoch=state.epoch,
                steps_per_epoch=data.steps_per_epoch,
                callbacks=[recorder, *callbacks],
                shuffle=False,
                verbose=0,
            )
        state = recorder.state
    write_scores(run, run.load_model(BEST_MODEL), dataset, split)
    run.write_state(dataclasses.replace(state, finished=True))
    return run.path


def write_metadata_model(run: Run, dataset: Dataset, split: Split) -> None:
    """metadata_model.json from the training split's age, sex and site, when the data records them."""
    train_meta = dataset.meta.iloc[split.train].reset_index(drop=True)
    model = fit_metadata_model(train_meta, dataset.labels[split.train], dataset.source)
    if model is not None:
        run.write_metadata_model(model)


@single_process()  # each process scores the whole of val and test (only process 0 writes)
def write_scores(run: Run, model: keras.Model, dataset: Dataset, split: Split) -> dict[str, dict]:
    """metrics.json (val and test), calibration.json, and the OOD detector and abstention rules of the
    run's final `model`; returns the metrics."""
    parts = {"val": split.val, "test": split.test}
    probs = {part: predict_probs(model, dataset.images[idx]) for part, idx in parts.items()}
    labels = {"val": dataset.labels[split.val], "test": dataset.labels[split.test]}
    metrics: dict[str, dict] = {part: classification_metrics(labels[part], probs[part]) for part in probs}
    # Calibrated on validation images only: the test split stays untouched for honest figures.
    calibration = calibration_record(probs["val"], labels["val"], fitted_on="val")
    metadata = run.metadata_model()
    if metadata is not None:
        metrics["with_metadata"] = {}
        for part, idx in parts.items():
            calibrated = apply_temperature(probs[part], calibration["temperature"])
            meta = dataset.meta.iloc[idx].reset_index(drop=True)
            # Not strict: a rare site may be missing from the training split; it counts as unknown.
            evidence = metadata.log_likelihood(meta, dataset.source, strict=False)
            metrics["with_metadata"][part] = classification_metrics(labels[part], fuse(calibrated, evidence))
    config = run.config()
    detector, dermoscopy, rules, metrics["abstention"] = fit_abstention(
        model, dataset, split, config, calibration["temperature"]
    )
    metrics.update(trust_on_test(dataset, split, probs["test"], calibration["temperature"], config.seed))
    run.write_metrics(metrics)
    run.write_calibration(calibration)
    run.write_abstention(detector, rules, dermoscopy)
    return metrics


def train(
    dataset: Dataset,
    split: Split,
    config: TrainConfig,
    run_dir: str | Path,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> Path:
    """Train `config.model` on `split.train` into a new run folder and return its path.

    An interrupted run (Ctrl-C, a crash) keeps its finished epochs; continue it with `resume`.
    """
    _check_inputs(dataset, split, config)
    run = Run.create(run_dir)
    keras.utils.set_random_seed(config.seed)
    run.write_config(config)
    run.write_split(split, dataset)
    run.write_dataset_info(dataset, split, config)
    run.write_environment(
        precision=training_precision(config), xla=config.xla, **placement_record(config.devices)
    )
    return _fit_and_finish(run, dataset, split, config, callbacks)


def resume(run_dir: str | Path, dataset: Dataset, callbacks: Sequence[keras.callbacks.Callback] = ()) -> Path:
    """Continue a run from its last finished epoch with its own config and split; history is kept.

    `dataset` must hold the run's image ids (the same source, loaded at the run's image size). A run
    that already finished is only re-scored (and given a metadata model if it was made without one).
    """
    run = Run.open(run_dir)
    config = run.config()
    split = run.split(dataset)
    _check_inputs(dataset, split, config)
    keras.utils.set_random_seed(config.seed)
    return _fit_and_finish(run, dataset, split, config, callbacks)
