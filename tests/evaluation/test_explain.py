"""Grad-CAM on every registered model, on a model whose evidence sits in a known place, and the overlay."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from helpers import every_model
from skinpamper.evaluation.explain import find_feature_layer, gradcam, overlay_heatmap
from skinpamper.models import create_model, get_model_info

APPLICATION_MIN_SIZE = 32  # keras.applications refuses smaller inputs; small inputs keep the test fast


def _images(n: int, size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


@pytest.mark.parametrize("name", every_model())
def test_every_registered_model_gives_finite_maps_in_unit_range(name: str) -> None:
    size = min(get_model_info(name).default_size, APPLICATION_MIN_SIZE)
    model = create_model(name, image_size=size, pretrained=False)
    images = _images(3, size)

    predicted = gradcam(model, images)
    chosen = gradcam(model, images, class_index=np.array([0, 3, 6]))

    for heatmaps in (predicted, chosen):
        assert heatmaps.shape == (3, size, size) and heatmaps.dtype == np.float32
        assert np.isfinite(heatmaps).all()
        assert heatmaps.min() >= 0.0 and heatmaps.max() <= 1.0
        peaks = heatmaps.max(axis=(1, 2))
        assert np.all((peaks == 0) | np.isclose(peaks, 1.0))  # each map is scaled to peak at 1, or empty
    path = find_feature_layer(model)
    assert len(path[-1].output.shape) == 4  # a spatial map, not a pooled vector


def test_a_model_behind_colour_constancy_gives_the_same_maps_as_on_corrected_images() -> None:
    model = create_model("compact_cnn", image_size=28, colour_constancy=True)
    images = _images(3, 28)
    corrected = np.round(model.get_layer("shades_of_grey")(images.astype(np.float32)).numpy()).astype(
        np.uint8
    )
    inner = model.get_layer("compact_cnn")
    np.testing.assert_allclose(gradcam(model, images), gradcam(inner, corrected), atol=0.05)


def test_predicted_class_is_the_default() -> None:
    model = create_model("resnet_small", image_size=28)
    images = _images(4, 28, seed=1)
    predicted = model.predict(images.astype(np.float32), verbose=0).argmax(axis=1)
    np.testing.assert_allclose(gradcam(model, images), gradcam(model, images, class_index=predicted))


def _brightness_model(size: int) -> keras.Model:
    """Class 0's score grows with brightness anywhere and class 1's shrinks: the evidence is bright pixels."""
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(1, 1, activation="relu", kernel_initializer="ones", bias_initializer="zeros")(
        inputs
    )
    x = keras.layers.GlobalAveragePooling2D()(x)
    dense = keras.layers.Dense(2, activation="softmax")
    outputs = dense(keras.layers.Rescaling(1 / 255)(x))
    dense.set_weights([np.array([[1.0, -1.0]], dtype=np.float32), np.zeros(2, dtype=np.float32)])
    return keras.Model(inputs, outputs)


def test_map_points_at_the_evidence_and_is_empty_without_any() -> None:
    model = _brightness_model(16)
    image = np.zeros((1, 16, 16, 3), dtype=np.uint8)
    image[0, 2:6, 9:13] = 255  # a bright patch top right

    heatmap = gradcam(model, image, class_index=0)[0]
    assert heatmap.max() == pytest.approx(1.0)
    assert heatmap[2:6, 9:13].mean() > 0.9 and heatmap[10:, :6].max() == 0.0
    # Brightness argues against class 1, and Grad-CAM keeps only positive evidence.
    assert (gradcam(model, image, class_index=1) == 0).all()


def test_bad_input_is_refused() -> None:
    model = _brightness_model(8)
    with pytest.raises(ValueError, match="uint8"):
        gradcam(model, np.zeros((1, 8, 8, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="class_index"):
        gradcam(model, np.zeros((1, 8, 8, 3), dtype=np.uint8), class_index=2)


def test_overlay_blends_colours_and_resizes_the_map_to_the_photo() -> None:
    image = np.full((30, 40, 3), 100, dtype=np.uint8)
    heatmap = np.zeros((8, 8), dtype=np.float32)
    heatmap[:, 4:] = 1.0  # evidence on the right half

    out = overlay_heatmap(image, heatmap, alpha=0.5)
    assert out.shape == image.shape and out.dtype == np.uint8
    # jet is dark red at 1 and dark blue at 0: red dominates on the right, blue on the left.
    assert out[15, 35, 0] > out[15, 35, 2] and out[15, 5, 2] > out[15, 5, 0]
    np.testing.assert_array_equal(overlay_heatmap(image, heatmap, alpha=0.0), image)
    with pytest.raises(ValueError, match="alpha"):
        overlay_heatmap(image, heatmap, alpha=1.5)


def test_a_saved_and_loaded_model_gives_the_same_maps(tmp_path) -> None:
    # Loading a Sequential calls each layer several times: the map must come from the live graph.
    model = create_model("seed", image_size=28)
    model.save(tmp_path / "seed.keras")
    loaded = keras.models.load_model(tmp_path / "seed.keras")
    images = _images(2, 28, seed=2)
    np.testing.assert_allclose(gradcam(loaded, images), gradcam(model, images), atol=1e-5)
