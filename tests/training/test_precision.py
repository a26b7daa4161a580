"""Mixed bfloat16 training: chosen only where the CPU has native bf16, and never leaks into saved models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from skinpamper.data.splits import split_dataset
from skinpamper.errors import ConfigError
from skinpamper.training.config import TrainConfig
from skinpamper.training.precision import cpu_has_bf16, resolve_precision
from skinpamper.training.run import LAST_MODEL, Run
from skinpamper.training.train import predict_probs, train
from synthetic import tiny_dataset

CPUINFO = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f {extra}\n\nprocessor\t: 1\n"


@pytest.mark.parametrize(("extra", "expected"), [("avx512_bf16", True), ("amx_bf16", True), ("", False)])
def test_cpu_flags_decide_native_bf16(tmp_path: Path, extra: str, expected: bool) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(CPUINFO.format(extra=extra))
    assert cpu_has_bf16(cpuinfo) is expected
    assert resolve_precision("auto", cpuinfo) == ("bfloat16" if expected else "float32")


def test_explicit_precision_wins_and_unknown_is_refused(tmp_path: Path) -> None:
    assert cpu_has_bf16(tmp_path / "missing") is False
    assert resolve_precision("float32", tmp_path / "missing") == "float32"
    assert resolve_precision("bfloat16", tmp_path / "missing") == "bfloat16"
    with pytest.raises(ConfigError, match="precision"):
        TrainConfig(precision="fp8")


@pytest.mark.parametrize("model", ["seed", "compact_cnn"])
def test_bf16_training_saves_a_float32_model_with_the_same_predictions(model: str, tmp_path: Path) -> None:
    dataset = tiny_dataset()
    config = TrainConfig(model=model, epochs=1, batch_size=8, seed=1, precision="bfloat16")
    run = Run.open(train(dataset, split_dataset(dataset, 0.1, 0.2, 1), config, tmp_path / "run"))
    best, last = run.load_model(), run.load_model(LAST_MODEL)
    assert {layer.compute_dtype for layer in best.layers} == {"float32"}
    assert "bfloat16" in {layer.compute_dtype for layer in last.layers}  # resume continues in bf16
    assert '"precision": "bfloat16"' in run.file("environment.json").read_text()
    probs = predict_probs(best, dataset.images[:16])
    assert probs.dtype == np.float32 and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    # One epoch, best = last: the float32 copy has the bf16 model's weights, so the two nearly agree.
    np.testing.assert_allclose(probs, predict_probs(last, dataset.images[:16]), atol=0.05)
