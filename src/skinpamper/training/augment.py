"""Training-time augmentation as TensorFlow ops on whole batches, built from `AugmentConfig`.

Applied per batch inside the tf.data training pipeline (never to validation, test or prediction), so it
costs a few vectorised ops per batch rather than Python per image. Every image in a batch gets its own
random draw. Randomness is stateless, keyed by a seed tensor the pipeline derives from (run seed, epoch,
batch), so a resumed run sees the same augmentations an uninterrupted one would have.

Images are float32 in 0..255 (models rescale internally) and are clipped back into that range. The
square symmetries (flips, 90-degree turns) need square images, which every Skin Pamper dataset has.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import tensorflow as tf

from skinpamper.training.config import AugmentConfig

Augment = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]
_split = tf.random.experimental.stateless_split


def make_augment(config: AugmentConfig) -> Augment | None:
    """`augment(images, seed)` for float batches (N, H, W, 3) and a shape-[2] int seed; None when off."""
    if not config.enabled:
        return None

    def augment(images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        seeds = _split(seed, 3)
        x = random_symmetry(images, seeds[0], config.flip, config.rot90)
        x = random_affine(x, seeds[1], config.rotation, config.zoom, config.translate)
        x = random_colour(
            x, seeds[2], config.brightness, config.contrast, config.saturation, config.channel_gain
        )
        return tf.clip_by_value(x, 0.0, 255.0)

    return augment


def _where(mask: tf.Tensor, changed: tf.Tensor, images: tf.Tensor) -> tf.Tensor:
    return tf.where(mask[:, None, None, None], changed, images)


def random_symmetry(images: tf.Tensor, seed: tf.Tensor, flip: bool, rot90: bool) -> tf.Tensor:
    """Exact pixel permutations: a random transpose followed by random horizontal/vertical flips.

    Transpose x h-flip x v-flip spans the 8 symmetries of a square, each equally likely. Without
    `rot90` the transpose is never taken (flips and 180-degree turns only); without `flip` the three
    choices are tied so that only the four rotations tf.image.rot90(k) occur.
    """
    if not (flip or rot90):
        return images
    n = tf.shape(images)[0]
    if flip:
        bits = tf.random.stateless_uniform([3, n], seed) < 0.5
        transpose = bits[0] if rot90 else tf.zeros([n], tf.bool)
        h_flip, v_flip = bits[1], bits[2]
    else:
        k = tf.random.stateless_uniform([n], seed, minval=0, maxval=4, dtype=tf.int32)
        transpose, v_flip, h_flip = k % 2 == 1, (k == 1) | (k == 2), k >= 2
    x = _where(transpose, tf.transpose(images, [0, 2, 1, 3]), images)
    x = _where(h_flip, tf.reverse(x, [2]), x)
    return _where(v_flip, tf.reverse(x, [1]), x)


def random_affine(
    images: tf.Tensor, seed: tf.Tensor, rotation: float, zoom: float, translate: float
) -> tf.Tensor:
    """One bilinear resampling for rotation (degrees), zoom and shift together; borders are mirrored.

    Mirroring rather than black fill keeps skin texture at the corners, so the model cannot learn
    "black corner" as a feature of augmented (training) images.
    """
    if rotation == 0 and zoom == 0 and translate == 0:
        return images
    n = tf.shape(images)[0]
    size = tf.cast(tf.shape(images)[1:3], tf.float32)
    draw = tf.random.stateless_uniform([4, n], seed, minval=-1.0, maxval=1.0)
    angle = draw[0] * rotation * math.pi / 180
    scale = 1.0 + draw[1] * zoom
    shift_y, shift_x = draw[2] * translate * size[0], draw[3] * translate * size[1]
    centre_y, centre_x = (size[0] - 1) / 2, (size[1] - 1) / 2
    # The op maps each output pixel to the input pixel it samples: in = R(-angle) / scale (out - c - t) + c.
    cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
    out_x, out_y = centre_x + shift_x, centre_y + shift_y
    zeros = tf.zeros_like(cos)
    transforms = tf.stack(
        [
            cos,
            sin,
            centre_x - (cos * out_x + sin * out_y),
            -sin,
            cos,
            centre_y - (-sin * out_x + cos * out_y),
            zeros,
            zeros,
        ],
        axis=1,
    )
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=tf.shape(images)[1:3],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="REFLECT",
    )


def random_colour(
    images: tf.Tensor,
    seed: tf.Tensor,
    brightness: float,
    contrast: float,
    saturation: float,
    channel_gain: float = 0.0,
) -> tf.Tensor:
    """A gain per colour channel, multiplicative brightness, contrast around each image's mean,
    saturation around its grey."""
    n = tf.shape(images)[0]
    factors = 1.0 + tf.random.stateless_uniform([3, n, 1, 1, 1], seed, minval=-1.0, maxval=1.0) * tf.constant(
        [brightness, contrast, saturation], shape=[3, 1, 1, 1, 1]
    )
    x = images
    if channel_gain:  # its own draw, so runs without it keep the augmentations they always had
        gain_seed = tf.random.experimental.stateless_fold_in(seed, 1)
        x = x * (
            1.0 + channel_gain * tf.random.stateless_uniform([n, 1, 1, 3], gain_seed, minval=-1.0, maxval=1.0)
        )
    if brightness:
        x = x * factors[0]
    if contrast:
        mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
        x = mean + (x - mean) * factors[1]
    if saturation:
        grey = tf.reduce_mean(x, axis=3, keepdims=True)
        x = grey + (x - grey) * factors[2]
    return x
