"""tf.data input pipelines from in-memory uint8 arrays; Keras 3 can feed them to any backend.

The training pipeline is a stream of index batches: each epoch draws its indices (shuffled, oversampled
or class-balanced) from the training labels alone, then each batch is gathered from the uint8 array,
cast to float32 and augmented as a whole. Index order and augmentation come from stateless random ops
keyed by (seed, epoch, batch), so a run resumed at epoch k sees exactly the batches an uninterrupted run
would have. The stream is infinite with a fixed number of steps per epoch, so `model.fit` needs
`steps_per_epoch`; batches are always full (drop-last), so BatchNorm never sees a batch of one image.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import tensorflow as tf
from sklearn.utils.class_weight import compute_class_weight

from skinpamper.classes import NUM_CLASSES
from skinpamper.errors import ConfigError
from skinpamper.training.augment import make_augment
from skinpamper.training.config import TrainConfig

_EPOCHS_FOREVER = 2**62
fold_in = tf.random.experimental.stateless_fold_in
# The pipeline's functions are plain tensor code; AutoGraph would only fail to parse them and warn.
_plain = tf.autograph.experimental.do_not_convert


class TrainData(NamedTuple):
    """The training stream and how many of its batches make one epoch."""

    dataset: tf.data.Dataset
    steps_per_epoch: int


def class_weights(labels: np.ndarray) -> np.ndarray:
    """sklearn's 'balanced' weights (n / (classes * count)) per class; 0 for classes absent from `labels`.

    Their mean over the training images is 1, so the loss keeps its usual scale and the learning rate
    means the same with and without weighting.
    """
    present = np.unique(labels)
    weights = np.zeros(NUM_CLASSES, dtype=np.float32)
    weights[present] = compute_class_weight("balanced", classes=present, y=labels)
    return weights


def oversampled_indices(labels: np.ndarray, seed: int) -> np.ndarray:
    """Each class's indices repeated up to the largest class's count (whole copies + a random rest)."""
    rng = np.random.default_rng(seed)
    by_class = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    target = max(len(idx) for idx in by_class)
    parts = []
    for idx in by_class:
        copies, rest = divmod(target, len(idx))
        parts += [np.tile(idx, copies), rng.choice(idx, size=rest, replace=False)]
    return np.concatenate(parts).astype(np.int64)


def _shuffled(indices: np.ndarray) -> Callable[[tf.Tensor], tf.Tensor]:
    base = tf.constant(indices, tf.int64)
    return lambda seed: tf.random.experimental.stateless_shuffle(base, seed)


def _balanced(labels: np.ndarray) -> Callable[[tf.Tensor], tf.Tensor]:
    """Draw len(labels) indices per epoch: a uniformly chosen present class, then an image of it.

    The same distribution as sample_from_datasets over per-class repeated datasets, but drawn with
    stateless ops so that a resumed run sees the batches an uninterrupted one would have.
    """
    present = np.unique(labels)
    order = tf.constant(np.argsort(labels, kind="stable"), tf.int64)
    counts = np.array([np.sum(labels == c) for c in present])
    counts_t = tf.constant(counts, tf.int64)
    offsets = tf.constant(np.concatenate([[0], np.cumsum(counts)[:-1]]), tf.int64)

    def draw(seed: tf.Tensor) -> tf.Tensor:
        seeds = tf.random.experimental.stateless_split(seed, 2)
        cls = tf.random.stateless_uniform([len(labels)], seeds[0], 0, len(present), dtype=tf.int32)
        count = tf.gather(counts_t, cls)
        within = tf.random.stateless_uniform([len(labels)], seeds[1], 0, tf.int64.max, dtype=tf.int64) % count
        return tf.gather(order, tf.gather(offsets, cls) + within)

    return draw


def _epoch_draw(labels: np.ndarray, imbalance: str, seed: int) -> tuple[Callable, int]:
    """(seed -> one epoch's training indices, the epoch's length) for an imbalance strategy."""
    if imbalance == "balanced_sampling":
        return _balanced(labels), len(labels)
    if imbalance == "oversample":
        indices = oversampled_indices(labels, seed)
        return _shuffled(indices), len(indices)
    return _shuffled(np.arange(len(labels))), len(labels)


def make_train_dataset(
    images: np.ndarray,
    labels: np.ndarray,
    config: TrainConfig,
    seed: int | None = None,
    start_epoch: int = 0,
    shard: tuple[int, int] = (0, 1),
) -> TrainData:
    """An endless, augmented, prefetched stream of (x, y[, sample_weight]) from the training split only.

    `images` (uint8 N,H,W,3) and `labels` must be the training part alone; nothing else is visible to
    the stream. Sample weights are added for imbalance="class_weight". `start_epoch` > 0 resumes the
    stream where an interrupted run left it. `shard` (k, n) yields only the k-th of n equal slices of
    each batch (the batch size must split evenly): what process k of n feeds when training across
    processes, whose slices make up the global batch.
    """
    seed = config.seed if seed is None else seed
    labels = np.asarray(labels, dtype=np.int64)
    draw, length = _epoch_draw(labels, config.imbalance, seed)
    batch = min(config.batch_size, length)
    steps = length // batch
    images_t, labels_t = tf.constant(images), tf.constant(labels)
    weights_t = tf.constant(class_weights(labels)) if config.imbalance == "class_weight" else None
    augment = make_augment(config.augment)
    run_seed = tf.constant([seed, 0], tf.int64)
    part, parts = shard
    if batch % parts:
        raise ConfigError(
            f"batch_size: a batch of {batch} images (the training split holds {length}) does not split "
            f"into {parts} equal slices, one per process"
        )

    @_plain
    def epoch_batches(epoch: tf.Tensor) -> tf.data.Dataset:
        epoch_seed = fold_in(run_seed, epoch)
        order = draw(fold_in(epoch_seed, 0))
        batches = tf.reshape(order[: steps * batch], [steps, batch])
        steps_t = tf.data.Dataset.range(1, steps + 1)
        batch_seeds = steps_t.map(_plain(lambda step: fold_in(epoch_seed, step)))
        return tf.data.Dataset.zip(batch_seeds, tf.data.Dataset.from_tensor_slices(batches))

    @_plain
    def load(batch_seed: tf.Tensor, idx: tf.Tensor) -> tuple[tf.Tensor, ...]:
        idx = idx[part * (batch // parts) : (part + 1) * (batch // parts)]
        x = tf.cast(tf.gather(images_t, idx), tf.float32)
        if augment is not None:  # each process its own draws: the same seed would repeat them per slice
            x = augment(x, batch_seed if parts == 1 else fold_in(batch_seed, part))
        y = tf.gather(labels_t, idx)
        return (x, y) if weights_t is None else (x, y, tf.gather(weights_t, y))

    dataset = (
        tf.data.Dataset.range(start_epoch, _EPOCHS_FOREVER)
        .flat_map(epoch_batches)
        .map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .prefetch(tf.data.AUTOTUNE)
    )
    return TrainData(dataset, steps)


def make_eval_dataset(images: np.ndarray, batch_size: int) -> tf.data.Dataset:
    """Batches of float32 images in their original order, unaugmented, for predict/evaluate."""
    return (
        tf.data.Dataset.from_tensor_slices(images)
        .batch(batch_size)
        .map(_plain(lambda x: tf.cast(x, tf.float32)), num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
