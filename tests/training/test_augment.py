"""Augmentation: shapes and range kept, symmetries are exact pixel permutations, training data only."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from skinpamper.training.augment import make_augment, random_affine, random_colour, random_symmetry
from skinpamper.training.config import AugmentConfig, TrainConfig
from skinpamper.training.pipeline import make_eval_dataset, make_train_dataset

SEED = tf.constant([1, 2], tf.int64)


def _images(n: int = 64, side: int = 8) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, side, side, 3)).astype(np.uint8)


def _dihedral(image: np.ndarray) -> list[np.ndarray]:
    turns = [np.rot90(image, k) for k in range(4)]
    return turns + [np.fliplr(t) for t in turns]


def _which(original: np.ndarray, changed: np.ndarray) -> int:
    """Index of the symmetry in _dihedral that maps `original` to `changed`, or -1."""
    return next((i for i, t in enumerate(_dihedral(original)) if np.array_equal(t, changed)), -1)


@pytest.mark.parametrize(
    ("flip", "rot90", "allowed"),
    [(True, True, set(range(8))), (False, True, {0, 1, 2, 3}), (True, False, {0, 2, 4, 6})],
)
def test_symmetries_are_exact_permutations(flip: bool, rot90: bool, allowed: set[int]) -> None:
    images = _images()
    out = random_symmetry(tf.constant(images, tf.float32), SEED, flip, rot90).numpy()
    found = {_which(a, b.astype(np.uint8)) for a, b in zip(images, out, strict=True)}
    assert found == allowed  # 64 draws hit every allowed symmetry and nothing else


def test_full_augmentation_keeps_shape_dtype_and_range() -> None:
    images = tf.constant(_images(), tf.float32)
    augment = make_augment(AugmentConfig(rotation=30, zoom=0.2, translate=0.1, brightness=0.5))
    out = augment(images, SEED)
    assert out.shape == images.shape and out.dtype == tf.float32
    assert float(tf.reduce_min(out)) >= 0 and float(tf.reduce_max(out)) <= 255
    assert not np.allclose(out.numpy(), images.numpy())
    np.testing.assert_array_equal(out.numpy(), augment(images, SEED).numpy())  # same seed, same result


def test_affine_and_colour_leave_a_flat_grey_image_alone() -> None:
    grey = tf.fill([4, 16, 16, 3], 100.0)  # mirrored borders keep it flat; contrast/saturation need detail
    moved = random_affine(grey, SEED, rotation=20, zoom=0.2, translate=0.1)
    np.testing.assert_allclose(moved.numpy(), 100.0, atol=1e-3)
    recoloured = random_colour(grey, SEED, brightness=0.0, contrast=0.5, saturation=0.5)
    np.testing.assert_allclose(recoloured.numpy(), 100.0, atol=1e-3)


def test_channel_gain_scales_each_channel_of_each_image_by_its_own_factor() -> None:
    images = tf.random.stateless_uniform([6, 8, 8, 3], [1, 2], 20.0, 200.0)
    out = random_colour(images, SEED, brightness=0.0, contrast=0.0, saturation=0.0, channel_gain=0.2)
    gains = (out / images).numpy()
    per_channel = gains[:, :1, :1, :]
    np.testing.assert_allclose(
        gains, np.broadcast_to(per_channel, gains.shape), rtol=1e-5
    )  # uniform per channel
    assert per_channel.min() >= 0.8 and per_channel.max() <= 1.2
    assert np.ptp(per_channel[:, 0, 0, :], axis=1).min() > 0  # channels differ: a colour cast, not brightness


def test_disabled_augmentation_is_none() -> None:
    assert make_augment(AugmentConfig(enabled=False)) is None


def test_only_the_training_pipeline_augments() -> None:
    images, labels = _images(32), np.arange(32) % 7
    evaluated = np.concatenate([x.numpy() for x in make_eval_dataset(images, 10)])
    np.testing.assert_array_equal(evaluated, images.astype(np.float32))
    plain = TrainConfig(batch_size=32, imbalance="none", augment=AugmentConfig(enabled=False))
    x, _ = next(iter(make_train_dataset(images, labels, plain).dataset))
    assert sorted(_unaltered_rows(images, x.numpy())) == list(range(32))
    augmented = plain.replace(augment={"enabled": True})
    x, _ = next(iter(make_train_dataset(images, labels, augmented).dataset))
    assert -1 in _unaltered_rows(images, x.numpy())


def _unaltered_rows(images: np.ndarray, batch: np.ndarray) -> list[int]:
    """The row of `images` each image of `batch` copies exactly, or -1 where it copies none."""
    flat = images.reshape(len(images), -1).astype(np.float32)
    matches = [np.flatnonzero((flat == b.reshape(-1)).all(axis=1)) for b in batch]
    return [int(m[0]) if len(m) else -1 for m in matches]
