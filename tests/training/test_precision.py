"""Mixed precision: "auto" picks a 16-bit type only where the hardware computes it natively, loss scaling
comes with float16, XLA stays off on CPUs, and no 16-bit type leaks into saved models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from skinpamper.data.splits import split_dataset
from skinpamper.errors import ConfigError
from skinpamper.runfolder.files import LAST_MODEL
from skinpamper.training.config import TrainConfig
from skinpamper.training.devices import Accelerator, cpu_has_bf16
from skinpamper.training.precision import precision_scope, resolve_jit_compile, resolve_precision
from skinpamper.training.run import Run
from skinpamper.training.train import predict_probs, train
from synthetic import tiny_dataset

CPU_ONLY = Accelerator(None, None)
CPUINFO = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f {extra}\n\nprocessor\t: 1\n"


@pytest.mark.parametrize(("extra", "expected"), [("avx512_bf16", True), ("amx_bf16", True), ("", False)])
def test_cpu_flags_decide_native_bf16(tmp_path: Path, extra: str, expected: bool) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(CPUINFO.format(extra=extra))
    assert cpu_has_bf16(cpuinfo) is expected
    assert resolve_precision("auto", cpuinfo, CPU_ONLY) == ("bfloat16" if expected else "float32")


@pytest.mark.parametrize(
    ("capability", "expected"),
    [((9, 0), "bfloat16"), ((8, 0), "bfloat16"), ((7, 5), "float16"), ((6, 0), "float16"), (None, "float16")],
)
def test_auto_on_a_gpu_uses_bf16_from_ampere_on_else_float16(
    tmp_path: Path, capability: tuple[int, int] | None, expected: str
) -> None:
    gpu = Accelerator("NVIDIA test GPU", capability)
    assert resolve_precision("auto", tmp_path / "missing", gpu) == expected
    assert resolve_precision("float32", tmp_path / "missing", gpu) == "float32"


def test_xla_is_off_on_a_cpu_and_left_to_keras_on_a_gpu() -> None:
    assert resolve_jit_compile("auto", CPU_ONLY) is False  # measured slower with TensorFlow on CPUs
    assert resolve_jit_compile("auto", Accelerator("NVIDIA test GPU", (8, 0))) == "auto"
    assert resolve_jit_compile("on", CPU_ONLY) is True
    assert resolve_jit_compile("off", Accelerator("NVIDIA test GPU", (8, 0))) is False
    with pytest.raises(ConfigError, match="xla"):
        TrainConfig(xla="maybe")


def test_explicit_precision_wins_and_unknown_is_refused(tmp_path: Path) -> None:
    assert cpu_has_bf16(tmp_path / "missing") is False
    assert resolve_precision("float32", tmp_path / "missing", CPU_ONLY) == "float32"
    assert resolve_precision("bfloat16", tmp_path / "missing", CPU_ONLY) == "bfloat16"
    with pytest.raises(ConfigError, match="precision"):
        TrainConfig(precision="fp8")


@pytest.mark.slow
@pytest.mark.parametrize("model", ["seed", "compact_cnn"])
def test_bf16_training_saves_a_float32_model_with_the_same_predictions(model: str, tmp_path: Path) -> None:
    dataset = tiny_dataset()
    config = TrainConfig(model=model, epochs=1, batch_size=8, seed=1, precision="bfloat16")
    run = Run.open(train(dataset, split_dataset(dataset, 0.1, 0.2, 1), config, tmp_path / "run"))
    best, last = run.load_model(), run.load_model(LAST_MODEL)
    assert {layer.compute_dtype for layer in best.layers} == {"float32"}
    assert "bfloat16" in {layer.compute_dtype for layer in last.layers}  # resume continues in bf16
    environment = run.environment()
    assert environment["precision"] == "bfloat16"
    assert environment["xla"] == "auto" and environment["jit_compile"] is False  # what Keras ran
    probs = predict_probs(best, dataset.images[:16])
    assert probs.dtype == np.float32 and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    # One epoch, best = last: the float32 copy has the bf16 model's weights, so the two nearly agree.
    np.testing.assert_allclose(probs, predict_probs(last, dataset.images[:16]), atol=0.05)


@pytest.mark.slow
def test_float16_training_scales_the_loss_and_saves_a_float32_model(tmp_path: Path) -> None:
    """What "auto" picks on pre-Ampere GPUs, run here on the CPU: the same code path, slowly."""
    import keras

    dataset = tiny_dataset()
    config = TrainConfig(model="compact_cnn", width=0.25, epochs=1, batch_size=8, seed=1, precision="float16")
    run = Run.open(train(dataset, split_dataset(dataset, 0.1, 0.2, 1), config, tmp_path / "run"))
    best = run.load_model()
    assert {layer.compute_dtype for layer in best.layers} == {"float32"}
    assert np.isfinite(predict_probs(best, dataset.images[:16])).all()
    with precision_scope(run.training_precision()):  # as resume loads it
        last = run.load_model(LAST_MODEL)
    assert isinstance(last.optimizer, keras.optimizers.LossScaleOptimizer)
    assert int(last.optimizer.iterations) > 0  # its state came back, not a fresh optimizer
