"""Grad-CAM: which parts of an image pushed the model towards a class.

The heatmap is the last convolutional feature map weighted by the gradient of the class score,
averaged over the map (Selvaraju et al., 2017). It works on every registered model without knowing
its layers: the feature map is found by walking the model (into nested keras.applications
backbones too), and a two-output copy of the model, sharing its weights, returns the map beside the
probabilities. Gradients come from TensorFlow, the backend the training pipeline already needs.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import Any

import keras
import matplotlib as mpl
import numpy as np
import tensorflow as tf
from PIL import Image

BATCH = 32  # images per gradient pass: bounds memory for 224 px backbones
COLOURMAP = "jet"  # the usual Grad-CAM palette: red is where the evidence is
_CONVOLUTIONS = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)
_LOG_FLOOR = 1e-12  # log(0) would give an infinite gradient for a class the model rules out entirely

LayerPath = tuple[keras.layers.Layer, ...]  # from a top-level layer down through nested models to one layer

# One two-output model per classifier: building it clones the graph, too slow to repeat per request.
_FEATURE_MODELS: weakref.WeakKeyDictionary[keras.Model, keras.Model] = weakref.WeakKeyDictionary()


def _walk(model: keras.Model, outer: LayerPath = ()) -> Iterator[LayerPath]:
    """Every layer in graph order, nested models opened in place, as its path from `model`."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _walk(layer, (*outer, layer))
        else:
            yield (*outer, layer)


def _spatial_shape(layer: keras.layers.Layer) -> tuple[int, ...] | None:
    """(H, W) of a layer's rank-4 output, None for any other output."""
    shape = getattr(layer, "output", None)
    shape = getattr(shape, "shape", None)
    return tuple(shape[1:3]) if shape is not None and len(shape) == 4 else None


def find_feature_layer(model: keras.Model) -> LayerPath:
    """The path to the last convolutional feature map, after the BatchNorm/activation/add that follow it.

    A 1x1 map cannot say where anything is (a 224 px backbone run at 32 px ends in one), so the last
    convolution with a larger map wins when there is one.
    """
    paths = list(_walk(model))
    convs = [i for i, path in enumerate(paths) if isinstance(path[-1], _CONVOLUTIONS)]
    if not convs:
        raise ValueError(f"model {model.name!r} has no convolution layer to explain")
    larger = [i for i in convs if np.prod(_spatial_shape(paths[i][-1]) or (1,)) > 1]
    chosen = (larger or convs)[-1]
    shape = _spatial_shape(paths[chosen][-1])
    # Layers right after the convolution that keep its map (BN, activation, residual add) are part of it.
    while chosen + 1 < len(paths) and _spatial_shape(paths[chosen + 1][-1]) == shape:
        chosen += 1
    return paths[chosen]


def _two_outputs(model: keras.Model, path: LayerPath) -> keras.Model:
    """A model sharing `model`'s layers that returns (feature map at `path`, probabilities).

    The graph is re-traced with the same layer objects (so the same weights) and the map is captured
    as the chosen layer is called: `layer.output` is not enough, since a layer of a loaded Sequential
    has been called once per rebuild and a layer inside a nested backbone belongs to another graph.
    A nested model on the path is called through its own two-output twin, so its map becomes a
    tensor of the outer graph.
    """
    functional = keras.Model(model.inputs, model.outputs)  # a Sequential's graph, as a Functional
    head = path[0]
    inner = _two_outputs(head, path[1:]) if len(path) > 1 else None
    captured = []

    def call(layer: keras.layers.Layer, *args: Any, **kwargs: Any) -> Any:
        if layer is not head:
            return layer(*args, **kwargs)
        if inner is None:
            captured.append(layer(*args, **kwargs))
            return captured[-1]
        features, outputs = inner(*args, **kwargs)
        captured.append(features)
        return outputs

    rebuilt = keras.models.clone_model(functional, clone_function=lambda layer: layer, call_function=call)
    return keras.Model(rebuilt.inputs, [captured[-1], rebuilt.outputs[0]])


def _feature_model(model: keras.Model) -> keras.Model:
    if model not in _FEATURE_MODELS:
        _FEATURE_MODELS[model] = _two_outputs(model, find_feature_layer(model))
    return _FEATURE_MODELS[model]


def _class_indices(class_index: int | np.ndarray | None, n: int, num_classes: int) -> np.ndarray | None:
    if class_index is None:
        return None
    indices = np.broadcast_to(np.asarray(class_index, dtype=np.int64), (n,))
    if indices.size and (indices.min() < 0 or indices.max() >= num_classes):
        raise ValueError(f"class_index must be in 0..{num_classes - 1}, got {class_index}")
    return indices


def _batch_cams(feature_model: keras.Model, images: np.ndarray, classes: np.ndarray | None) -> np.ndarray:
    """Grad-CAM at the feature map's resolution (n, h, w), before normalisation."""
    x = tf.convert_to_tensor(images, dtype=tf.float32)
    with tf.GradientTape() as tape:
        features, probs = feature_model(x, training=False)
        target = tf.argmax(probs, axis=1) if classes is None else tf.constant(classes)
        # log p rather than p: a saturated softmax has vanishing gradients, its log does not.
        score = tf.math.log(tf.gather(probs, target, axis=1, batch_dims=1) + _LOG_FLOOR)
    gradients = tape.gradient(score, features)
    weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
    return tf.nn.relu(tf.reduce_sum(weights * features, axis=-1)).numpy()


def gradcam(
    model: keras.Model, images: np.ndarray, class_index: int | np.ndarray | None = None
) -> np.ndarray:
    """Heatmaps (N, H, W) in [0, 1], float32, for uint8 images (N, H, W, 3) as the model takes them.

    `class_index` is one class for all images, one per image, or None for each image's predicted class.
    Each map is scaled so its maximum is 1; a map with no positive evidence is all zeros.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"gradcam needs uint8 images shaped (N, H, W, 3), got {images.dtype} {images.shape}")
    feature_model = _feature_model(model)
    classes = _class_indices(class_index, len(images), feature_model.outputs[1].shape[-1])
    height, width = images.shape[1:3]
    heatmaps = np.zeros(images.shape[:3], dtype=np.float32)
    for start in range(0, len(images), BATCH):
        stop = start + BATCH
        cams = _batch_cams(
            feature_model, images[start:stop], None if classes is None else classes[start:stop]
        )
        cams = np.nan_to_num(cams, nan=0.0, posinf=0.0)
        # Bilinear resizing of non-negative maps stays non-negative; scaling after it makes the peak 1.
        cams = tf.image.resize(cams[..., None], (height, width), method="bilinear").numpy()[..., 0]
        peak = cams.max(axis=(1, 2), keepdims=True)
        heatmaps[start:stop] = np.divide(cams, peak, out=np.zeros_like(cams), where=peak > 0).clip(0.0, 1.0)
    return heatmaps


def gradcam_examples(y_true: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Rows of the most confident correct and the most confident wrong prediction of each true class.

    The examples worth explaining: what the model is surest of, right and wrong. The evaluation
    computes maps for these rows and the report's grid lays them out, so both choose them here.
    """
    y_true, probs = np.asarray(y_true), np.asarray(probs)
    y_pred, confidence = probs.argmax(axis=1), probs.max(axis=1)
    rows = []
    for c in range(probs.shape[1]):
        for correct in (True, False):
            candidates = np.flatnonzero((y_true == c) & ((y_pred == c) == correct))
            if len(candidates):
                rows.append(candidates[np.argmax(confidence[candidates])])
    return np.asarray(rows, dtype=np.int64)


def overlay_heatmap(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.4) -> np.ndarray:
    """`image` (H, W, 3 uint8) blended with the coloured `heatmap` (any size, resized to the image).

    The heatmap may come from the model's small input while the image is the full photo.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"overlay_heatmap needs a uint8 image (H, W, 3), got {image.dtype} {image.shape}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    heat = np.clip(np.nan_to_num(np.asarray(heatmap, dtype=np.float32)), 0.0, 1.0)
    if heat.ndim != 2:
        raise ValueError(f"overlay_heatmap needs a heatmap (H, W), got shape {heat.shape}")
    if heat.shape != image.shape[:2]:
        resized = Image.fromarray(heat).resize((image.shape[1], image.shape[0]), Image.Resampling.BILINEAR)
        heat = np.clip(np.asarray(resized), 0.0, 1.0)
    colours = mpl.colormaps[COLOURMAP](heat)[..., :3] * 255.0
    blended = (1.0 - alpha) * image.astype(np.float32) + alpha * colours
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)
