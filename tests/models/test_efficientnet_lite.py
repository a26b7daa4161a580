"""The EfficientNet-Lite port: its ImageNet head on pictures of known classes, parity with the reference
PyTorch implementation, and the weights file read safely (a crafted pickle never runs)."""

from __future__ import annotations

import os
import pickle
import shutil
from collections import OrderedDict
from pathlib import Path

import keras
import numpy as np
import pytest
from click.testing import CliRunner
from matplotlib import cbook
from PIL import Image
from sklearn.datasets import load_sample_images

from skinpamper.cli import main
from skinpamper.errors import WeightsError
from skinpamper.models import create_model, efficientnet_lite, pretrained_weights
from skinpamper.models.efficientnet_lite import VARIANTS, imagenet_classifier
from skinpamper.models.torch_state_dict import MAGIC_NUMBER, PROTOCOL_VERSION, read_state_dict

MILITARY_UNIFORM, DAISY = 652, 985
BUILDINGS = {442, 483, 663, 698, 832}  # bell cote, castle, monastery, palace, stupa


def _variants() -> list[object]:
    """Every variant; the quick set checks the default one (lite0), the others repeat it (slow)."""
    return [
        pytest.param(n, marks=[] if n == "efficientnet_lite0" else [pytest.mark.slow])
        for n in sorted(VARIANTS)
    ]


def _picture(image: Image.Image, size: int = 224) -> np.ndarray:
    return np.asarray(image.convert("RGB").resize((size, size), Image.BICUBIC), np.float32)[None]


def _top5(model: keras.Model, image: Image.Image) -> list[int]:
    return list(np.argsort(model.predict(_picture(image), verbose=0)[0])[::-1][:5])


@pytest.mark.parametrize("name", _variants())
def test_imagenet_head_names_known_pictures(name: str) -> None:
    model = imagenet_classifier(name, 224)
    with Image.open(cbook.get_sample_data("grace_hopper.jpg")) as portrait:
        assert _top5(model, portrait)[0] == MILITARY_UNIFORM
    if name == "efficientnet_lite0":
        china, flower = (Image.fromarray(image) for image in load_sample_images().images)
        assert _top5(model, flower)[0] == DAISY
        assert BUILDINGS & set(_top5(model, china))


@pytest.mark.parametrize("size", [pytest.param(224, marks=pytest.mark.slow), 128])  # 224: ImageNet's size
@pytest.mark.parametrize("name", _variants())
def test_logits_match_the_reference_implementation(name: str, size: int) -> None:
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (scripts/test adds its CPU wheel)")
    reference = pytest.importorskip("efficientnet_lite_pytorch", reason="efficientnet-lite-pytorch missing")
    source = VARIANTS[name].weights.source()
    torch_name = name.replace("_", "-")
    theirs = reference.EfficientNet.from_pretrained(
        torch_name, weights_path=str(source), image_size=size
    ).eval()
    images = np.random.default_rng(size).uniform(0, 255, (3, size, size, 3)).astype(np.float32)
    with torch.no_grad():  # the reference takes the TFLite preprocessing as given, channels first
        expected = theirs(torch.from_numpy(((images - 127) / 128).transpose(0, 3, 1, 2))).numpy()
    ours = imagenet_classifier(name, size)
    features = keras.Model(ours.inputs, ours.get_layer("imagenet").input).predict(images, verbose=0)
    kernel, bias = ours.get_layer("imagenet").get_weights()
    np.testing.assert_allclose(features @ kernel + bias, expected, atol=1e-4, rtol=0)


def test_the_classifier_starts_from_the_imagenet_backbone() -> None:
    pretrained = create_model("efficientnet_lite0", 64)
    scratch = create_model("efficientnet_lite0", 64, pretrained=False)
    imagenet = imagenet_classifier("efficientnet_lite0", 64)
    stem = imagenet.get_layer("stem_conv").get_weights()[0]
    np.testing.assert_array_equal(pretrained.get_layer("stem_conv").get_weights()[0], stem)
    assert not np.allclose(scratch.get_layer("stem_conv").get_weights()[0], stem)
    assert pretrained.output_shape == (None, 7)


class _Payload:
    """What an attacker would put in a .pth file: a call made while unpickling."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


def _legacy_file(path: Path, state: object) -> Path:
    with path.open("wb") as file:
        for header in (MAGIC_NUMBER, PROTOCOL_VERSION, {"little_endian": True}):
            pickle.dump(header, file, protocol=2)
        pickle.dump(state, file, protocol=2)
        pickle.dump([], file, protocol=2)
    return path


@pytest.mark.parametrize("where", ["state", "header"])
def test_a_crafted_pickle_is_refused_and_nothing_runs(tmp_path: Path, where: str) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pth"
    if where == "state":
        _legacy_file(path, OrderedDict(weight=_Payload(marker)))
    else:
        path.write_bytes(pickle.dumps(_Payload(marker), protocol=2))
    with pytest.raises(WeightsError, match=r"evil\.pth: .*refused to load (posix|os)\.system"):
        read_state_dict(path)
    assert not marker.exists()


def test_a_legacy_state_dict_round_trips_through_torch(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (scripts/test adds its CPU wheel)")
    state = OrderedDict(
        conv=torch.randn(4, 3, 2, 2),
        transposed=torch.randn(5, 6).t(),  # not contiguous: strides matter
        counter=torch.tensor(7),
        half=torch.randn(3).half(),
    )
    path = tmp_path / "state.pth"
    torch.save(state, path, _use_new_zipfile_serialization=False)
    arrays = read_state_dict(path)
    assert list(arrays) == list(state)
    for key, tensor in state.items():
        np.testing.assert_array_equal(arrays[key], tensor.numpy())
        assert arrays[key].dtype == tensor.numpy().dtype


def test_truncated_weights_name_the_file(tmp_path: Path) -> None:
    source = VARIANTS["efficientnet_lite0"].weights.source()
    cut = tmp_path / "cut.pth"
    cut.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    with pytest.raises(WeightsError, match=r"cut\.pth: .*truncated"):
        read_state_dict(cut)


@pytest.fixture
def altered_wheel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The Lite0 wheel's file replaced by a copy with one byte changed."""
    source = VARIANTS["efficientnet_lite0"].weights.source()
    copy = tmp_path / source.name
    shutil.copyfile(source, copy)
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    monkeypatch.setattr(pretrained_weights.WheelWeights, "source", lambda self: copy)
    return copy


def test_an_altered_weights_file_is_refused_in_one_line(
    altered_wheel: Path, ham_folder: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    args = ["train", "--data", ham_folder, "--model", "efficientnet_lite0", "--image-size", "32"]
    result = CliRunner().invoke(main, [*map(str, args), "--members", "1", "--out", str(out)])
    assert result.exit_code == 1
    assert f"Error: {altered_wheel}: SHA-256" in result.output and "damaged or swapped" in result.output
    assert "Traceback" not in result.output and not out.exists()


def test_weights_are_converted_once_and_cached_by_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    first = efficientnet_lite.imagenet_arrays("efficientnet_lite0")
    (cached,) = pretrained_weights.weights_cache_dir().glob("efficientnet_lite0-*.npz")
    assert cached.name == f"efficientnet_lite0-{VARIANTS['efficientnet_lite0'].weights.sha256[:16]}.npz"

    def never(path: Path) -> None:
        raise AssertionError("converted a second time")

    monkeypatch.setattr(pretrained_weights, "read_state_dict", never)
    again = efficientnet_lite.imagenet_arrays("efficientnet_lite0")
    assert again.keys() == first.keys()
    assert all(np.array_equal(again[key], first[key]) for key in first)


def test_too_small_an_image_size_names_the_smallest(ham_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["train", "--data", ham_folder, "--model", "efficientnet_lite0", "--image-size", "16"]
    result = CliRunner().invoke(main, [*map(str, args), "--out", str(out)])
    assert result.exit_code == 1 and "smallest it takes is 32 px" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not out.exists()
