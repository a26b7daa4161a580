"""Shades-of-grey colour constancy: what it removes, what it keeps, and that models carry it."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from skinpamper.models import create_model
from skinpamper.models.colour import ShadesOfGrey

RNG = np.random.default_rng(0)
# Dim enough that no corrected channel reaches 255 and is clipped: clipping is the one thing that
# keeps the correction from being exact.
IMAGES = RNG.uniform(20, 110, (3, 16, 16, 3)).astype(np.float32)


def _sog(images: np.ndarray) -> np.ndarray:
    return keras.ops.convert_to_numpy(ShadesOfGrey()(images))


def test_a_colour_cast_is_removed() -> None:
    """The same scene under a reddish and a bluish illuminant comes out the same up to brightness."""
    reddish, bluish = _sog(IMAGES * [1.0, 0.8, 0.6]), _sog(IMAGES * [0.6, 0.8, 1.0])
    ratio = reddish / bluish  # one brightness factor per image, the same in every pixel and channel
    np.testing.assert_allclose(
        ratio, ratio.mean(axis=(1, 2, 3), keepdims=True) * np.ones_like(ratio), rtol=1e-4
    )
    assert np.abs(IMAGES * [1.0, 0.8, 0.6] / (IMAGES * [0.6, 0.8, 1.0]) - 1).max() > 0.6  # unlike before


def test_a_grey_balanced_image_is_left_alone() -> None:
    grey = np.repeat(IMAGES[..., :1], 3, axis=-1)
    np.testing.assert_allclose(_sog(grey), grey, rtol=1e-4, atol=1e-3)


def test_output_stays_in_the_pixel_range() -> None:
    out = _sog(np.concatenate([IMAGES * [2.3, 0.2, 0.2], np.zeros((1, 16, 16, 3), np.float32)]))
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 255
    assert out[-1].max() == 0  # black stays black


def test_a_model_built_with_it_trains_saves_and_loads(tmp_path) -> None:
    model = create_model("compact_cnn", image_size=16, colour_constancy=True)
    assert isinstance(model.layers[1], ShadesOfGrey)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    assert np.isfinite(model.train_on_batch(IMAGES, np.array([0, 3, 5])))
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded.predict(IMAGES, verbose=0), model.predict(IMAGES, verbose=0), rtol=1e-5)


@pytest.mark.parametrize("power", [1.0, 6.0])
def test_power_survives_serialisation(power: float) -> None:
    layer = ShadesOfGrey.from_config(ShadesOfGrey(power=power).get_config())
    assert layer.power == power
