"""Training pipelines: every imbalance strategy draws only from the training part it is given."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.utils.class_weight import compute_class_weight

from skinpamper.training.config import AugmentConfig, TrainConfig
from skinpamper.training.pipeline import class_weights, make_eval_dataset, make_train_dataset

STRATEGIES = ("class_weight", "logit_adjust", "balanced_sampling", "oversample", "none")
# A skewed label set like HAM10000's; class 6 (vasc) exists only in the test part.
LABELS = np.array([5] * 60 + [2] * 12 + [4] * 10 + [0] * 6 + [1] * 4 + [6] * 8)


def _tagged_images(n: int) -> np.ndarray:
    """Images whose pixels spell their own row number, so a batch reveals where it came from."""
    images = np.zeros((n, 4, 4, 3), np.uint8)
    images[..., 0], images[..., 1] = (np.arange(n) % 256)[:, None, None], (np.arange(n) // 256)[:, None, None]
    return images


def _parts() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    test = np.concatenate([np.flatnonzero(LABELS == 6), rng.choice(np.flatnonzero(LABELS != 6), 10, False)])
    return np.setdiff1d(np.arange(len(LABELS)), test), np.sort(test)


def _epochs(strategy: str, epochs: int = 3, batch_size: int = 8) -> tuple[list[tuple], int, np.ndarray]:
    """Batches of `epochs` epochs (ids, labels, weights) from the training part, and the steps per epoch."""
    train, _ = _parts()
    config = TrainConfig(batch_size=batch_size, imbalance=strategy, augment=AugmentConfig(enabled=False))
    data = make_train_dataset(_tagged_images(len(LABELS))[train], LABELS[train], config)
    batches = []
    for batch in data.dataset.take(epochs * data.steps_per_epoch):
        x = batch[0].numpy().astype(np.int64)
        ids = x[:, 0, 0, 0] + 256 * x[:, 0, 0, 1]  # the image's row in the whole dataset
        weights = batch[2].numpy() if len(batch) == 3 else None
        batches.append((ids, batch[1].numpy(), weights))
    return batches, data.steps_per_epoch, train


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_batches_come_from_the_training_part_only(strategy: str) -> None:
    batches, _, train = _epochs(strategy)
    ids = np.concatenate([b[0] for b in batches])
    labels = np.concatenate([b[1] for b in batches])
    assert np.isin(ids, train).all()
    assert 6 not in labels  # vasc exists only in the test part
    np.testing.assert_array_equal(labels, LABELS[ids])  # images and labels stay paired


@pytest.mark.parametrize("strategy", ["none", "class_weight", "balanced_sampling"])
def test_steps_per_epoch_is_training_size_over_batch(strategy: str) -> None:
    _, steps, train = _epochs(strategy, epochs=1)
    assert steps == len(train) // 8


def test_balanced_sampling_draws_classes_about_equally() -> None:
    batches, _, _ = _epochs("balanced_sampling", epochs=20)
    counts = np.bincount(np.concatenate([b[1] for b in batches]), minlength=7)
    present = counts[counts > 0]
    assert len(present) == 5  # akiec, bcc, bkl, mel, nv are in the training part
    assert present.min() > 0.8 * present.mean() and present.max() < 1.2 * present.mean()


def test_oversampling_equalises_each_epoch() -> None:
    batches, steps, train = _epochs("oversample", epochs=1)
    counts = np.bincount(np.concatenate([b[1] for b in batches]), minlength=7)
    majority = np.bincount(LABELS[train]).max()
    assert steps == 5 * majority // 8
    present = counts[counts > 0]
    assert present.max() - present.min() <= 8  # equal up to the one partial batch left out


def test_logit_adjust_streams_training_images_once_each_and_unweighted() -> None:
    """Its balancing lives in the loss (skinpamper.training.losses), so the stream is a plain shuffle."""
    batches, steps, _ = _epochs("logit_adjust", epochs=1)
    ids = np.concatenate([b[0] for b in batches])
    assert all(weights is None for _, _, weights in batches)
    assert len(np.unique(ids)) == len(ids) == steps * 8


def test_class_weights_come_from_training_labels_only() -> None:
    train, _ = _parts()
    weights = class_weights(LABELS[train])
    present = np.unique(LABELS[train])
    expected = compute_class_weight("balanced", classes=present, y=LABELS[train])
    np.testing.assert_allclose(weights[present], expected, rtol=1e-6)
    assert weights[6] == 0 and weights[3] == 0  # absent from training
    np.testing.assert_allclose(np.mean(weights[LABELS[train]]), 1.0, rtol=1e-5)
    batches, _, _ = _epochs("class_weight", epochs=1)
    for _, labels, sample_weights in batches:
        np.testing.assert_allclose(sample_weights, weights[labels])


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_epochs_differ_and_a_resumed_stream_continues_exactly(strategy: str) -> None:
    train, _ = _parts()
    config = TrainConfig(batch_size=8, imbalance=strategy)
    images, labels = _tagged_images(len(LABELS))[train], LABELS[train]
    whole = make_train_dataset(images, labels, config)
    steps = whole.steps_per_epoch
    two = [b[0].numpy() for b in whole.dataset.take(2 * steps)]
    resumed = [
        b[0].numpy() for b in make_train_dataset(images, labels, config, start_epoch=1).dataset.take(steps)
    ]
    assert not np.array_equal(np.stack(two[:steps]), np.stack(two[steps:]))
    np.testing.assert_array_equal(np.stack(two[steps:]), np.stack(resumed))


def test_eval_dataset_keeps_order_and_casts() -> None:
    images = _tagged_images(20)
    batches = list(make_eval_dataset(images, 6))
    assert [len(b) for b in batches] == [6, 6, 6, 2] and batches[0].dtype.name == "float32"
    np.testing.assert_array_equal(np.concatenate([b.numpy() for b in batches]), images)
