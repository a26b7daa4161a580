"""Dihedral test-time augmentation: the views are D4, and the average is what it claims."""

from __future__ import annotations

import numpy as np
import pytest

from skinpamper.scoring.tta import dihedral_views, predict_tta


def _d4(a: np.ndarray) -> list[np.ndarray]:
    """The 8 symmetries of a square image (S, S, C), written out by index, not via rot90."""
    t = a.transpose(1, 0, 2)
    return [a, a[::-1, ::-1], a[::-1], a[:, ::-1], t, t[::-1, ::-1], t[::-1], t[:, ::-1]]


def test_views_are_exactly_the_dihedral_group() -> None:
    image = np.arange(4 * 4 * 3, dtype=np.uint8).reshape(1, 4, 4, 3)  # no symmetry at all
    views = [v[0].tobytes() for v in dihedral_views(image)]
    assert len(views) == 8 and len(set(views)) == 8
    assert set(views) == {v.tobytes() for v in _d4(image[0])}
    assert views[0] == image[0].tobytes()  # the original comes first


def test_non_square_images_are_refused() -> None:
    with pytest.raises(ValueError, match="square"):
        next(dihedral_views(np.zeros((1, 4, 6, 3), np.uint8)))


def test_tta_is_the_mean_over_views_in_any_batching() -> None:
    images = np.random.default_rng(0).integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)

    def top_row(x: np.ndarray) -> np.ndarray:  # depends on orientation: the first row's red values
        assert x.dtype == np.float32
        z = np.exp(x[:, 0, :3, 0] / 100.0)
        return z / z.sum(axis=1, keepdims=True)

    expected = np.mean([top_row(v.astype(np.float32)) for v in dihedral_views(images)], axis=0)
    np.testing.assert_allclose(predict_tta(top_row, images, batch_size=2), expected, rtol=1e-6)
    np.testing.assert_allclose(predict_tta(top_row, images), expected, rtol=1e-6)
    assert not np.allclose(top_row(images.astype(np.float32)), expected)


def test_invariant_model_gives_its_plain_output() -> None:
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((8, 8, 3)), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(7, "softmax")]
    )
    images = np.random.default_rng(1).integers(0, 256, (6, 8, 8, 3), dtype=np.uint8)

    def predict(x: np.ndarray) -> np.ndarray:
        return keras.ops.convert_to_numpy(model(x, training=False))

    plain = predict(images.astype(np.float32))
    np.testing.assert_allclose(predict_tta(predict, images, batch_size=4), plain, atol=1e-6)
