"""Simulated clinic shifts, each generated from fixture dermoscopy-like images."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from skinpamper.scoring.shifts import SHIFTS, random_shift


def dermoscopy_like(height: int = 150, width: int = 200, seed: int = 0) -> np.ndarray:
    """A fixture lesion: a brown, irregular blob with a darker core on mottled pink skin."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:height, 0:width]
    skin = np.array([225.0, 150.0, 150.0]) + rng.normal(0, 6, (height, width, 3))
    angle = np.arctan2(rows - height / 2, cols - width / 2)
    radius = np.hypot((rows - height / 2) / (height / 4), (cols - width / 2) / (width / 4))
    edge = 1 + 0.15 * np.sin(5 * angle + rng.uniform(0, 6))
    lesion = np.clip((edge - radius) / 0.2, 0, 1)[..., None]
    brown = np.array([120.0, 70.0, 60.0]) - 40 * np.clip(1 - radius, 0, 1)[..., None]
    return np.clip(lesion * brown + (1 - lesion) * skin, 0, 255).astype(np.uint8)


FIXTURES = [dermoscopy_like(seed=0), dermoscopy_like(90, 120, seed=1)]


@pytest.mark.parametrize("name", sorted(SHIFTS))
def test_each_shift_gives_an_rgb_image_that_differs_and_repeats_with_its_seed(name: str) -> None:
    for image in FIXTURES:
        shifted = SHIFTS[name](image, np.random.default_rng(3))
        assert shifted.dtype == np.uint8 and shifted.ndim == 3 and shifted.shape[2] == 3
        again = SHIFTS[name](image, np.random.default_rng(3))
        np.testing.assert_array_equal(shifted, again)
        if shifted.shape == image.shape:
            assert np.abs(shifted.astype(int) - image).mean() > 0.5


def test_dark_rim_darkens_the_corners_and_keeps_the_lesion() -> None:
    image = FIXTURES[0]
    rimmed = SHIFTS["dark_rim"](image, np.random.default_rng(0))
    assert rimmed[:3, :3].mean() < 30 and rimmed[-3:, -3:].mean() < 30
    centre = (slice(60, 90), slice(85, 115))
    assert abs(rimmed[centre].mean() - image[centre].mean()) < 20


def test_zoom_out_makes_the_lesion_smaller_in_a_field_of_skin() -> None:
    image = FIXTURES[0]
    lesion = (image.mean(axis=2) < 120).mean()
    zoomed = SHIFTS["zoom_out"](image, np.random.default_rng(0))
    assert 0 < (zoomed.mean(axis=2) < 120).mean() < 0.6 * lesion
    assert np.abs(zoomed[0].mean(axis=0) - image[0].mean(axis=0)).max() < 20  # the border is still skin


def test_colour_cast_moves_the_balance_of_the_channels() -> None:
    image = FIXTURES[0].astype(float)
    for seed in range(5):
        cast = SHIFTS["colour_cast"](FIXTURES[0], np.random.default_rng(seed)).astype(float)
        before, after = image.mean(axis=(0, 1)), cast.mean(axis=(0, 1))
        assert np.abs(after / after.sum() - before / before.sum()).max() > 0.005


def test_blur_removes_fine_detail_and_jpeg_keeps_the_picture() -> None:
    image = FIXTURES[0]
    blurred = SHIFTS["blur"](image, np.random.default_rng(0)).astype(float)
    assert np.abs(np.diff(blurred, axis=1)).mean() < np.abs(np.diff(image.astype(float), axis=1)).mean()
    compressed = SHIFTS["jpeg"](image, np.random.default_rng(0)).astype(float)
    assert np.abs(compressed - image).mean() < 15


def test_aspect_and_size_and_the_other_clinic_change_the_frame() -> None:
    shapes = {SHIFTS["aspect_and_size"](FIXTURES[0], np.random.default_rng(s)).shape for s in range(6)}
    assert len(shapes) > 1 and all(96 <= max(h, w) <= 1024 for h, w, _ in shapes)
    assert SHIFTS["other_clinic"](FIXTURES[1], np.random.default_rng(0)).shape == (560, 768, 3)


def test_random_shift_chains_shifts_and_survives_the_runs_preprocessing() -> None:
    from skinpamper.imaging import fit_square

    shifted = random_shift(FIXTURES[0], np.random.default_rng(5))
    assert fit_square(Image.fromarray(shifted), 64, "squash").shape == (64, 64, 3)
