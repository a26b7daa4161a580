"""The dermoscopy detector on real HAM10000 images and pretrained EfficientNet-Lite0 features: a
dermoscopy image with a dark rim is answered, a portrait is refused. Skipped without the real data."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from helpers import REAL_DATA
from skinpamper.imaging import fit_square
from skinpamper.scoring.ood import fit_threshold
from skinpamper.scoring.shifts import dark_rim

pytestmark = [
    pytest.mark.skipif(
        not (REAL_DATA / "HAM10000_images_part_1").is_dir(),
        reason=f"real HAM10000 JPEGs not found at {REAL_DATA}",
    ),
    pytest.mark.slow,
]
SIZE = 128


def portrait() -> np.ndarray:
    """A drawn head and shoulders: skin-coloured face, hair, eyes and mouth, on a wall."""
    image = Image.new("RGB", (150, 200), (170, 190, 210))
    draw = ImageDraw.Draw(image)
    draw.ellipse((20, 150, 130, 260), fill=(40, 60, 120))  # shoulders
    draw.ellipse((40, 30, 110, 130), fill=(225, 180, 150))  # face
    draw.chord((35, 20, 115, 90), 180, 360, fill=(70, 45, 30))  # hair
    for x in (58, 84):
        draw.ellipse((x, 68, x + 10, 76), fill=(40, 30, 30))
    draw.arc((60, 95, 92, 115), 20, 160, fill=(150, 60, 60), width=3)
    return np.asarray(image)


def test_a_rimmed_lesion_is_answered_and_a_portrait_refused() -> None:
    from skinpamper.models import create_model
    from skinpamper.models.features import feature_model
    from skinpamper.training.config import TrainConfig
    from skinpamper.training.trust import fit_dermoscopy, probabilities_and_features, shifted

    files = sorted((REAL_DATA / "HAM10000_images_part_1").glob("*.jpg"))[:360]
    originals = [np.asarray(Image.open(f).convert("RGB")) for f in files]
    images = np.stack([fit_square(Image.fromarray(o), SIZE, "squash") for o in originals])
    config = TrainConfig(image_size=SIZE, model="efficientnet_lite0")
    scorer = feature_model(create_model("efficientnet_lite0", image_size=SIZE))
    train, val, held_out = images[:240], images[240:340], originals[340:]
    _, train_features = probabilities_and_features(scorer, train)
    detector = fit_dermoscopy(scorer, train_features, train, config)
    _, val_features = probabilities_and_features(scorer, val)
    _, moved = probabilities_and_features(scorer, shifted(val, config, np.random.default_rng(1)))
    threshold = fit_threshold(np.r_[detector.score(val_features), detector.score(moved)], 0.99)
    rng = np.random.default_rng(2)
    rimmed = np.stack([fit_square(Image.fromarray(dark_rim(o, rng)), SIZE, "squash") for o in held_out])
    drawn = fit_square(Image.fromarray(portrait()), SIZE, "squash")[None]
    _, features = probabilities_and_features(scorer, np.concatenate([rimmed, drawn]))
    scores = detector.score(features)
    assert np.mean(scores[:-1] <= threshold) >= 0.9  # rimmed dermoscopy answered
    assert scores[-1] > threshold  # the portrait refused
