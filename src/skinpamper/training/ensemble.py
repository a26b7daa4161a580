"""`make_ensemble(run_dirs, out, dataset)`: one run whose model averages the probabilities of others.

Models trained from different random initialisations on the same split make partly independent
mistakes, so their mean is steadier and usually more accurate than a typical member: on HAM10000 at
28 px, averaging three compact_cnn runs raised test balanced accuracy by 0.00-0.03 (0.014 on average
over four splits) above the members' mean and cut its spread across splits to a third (README). The
members must share the split (train them with the same `split_seed` and different `seed`s), so that
no member has trained on the ensemble's validation or test images; they must also share the input
size and the way photos were squared. The result is an ordinary run folder: evaluate, predict, export
and serve read it like any other. `train_ensemble` trains the members and averages them in one call.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import keras
from keras import layers

from skinpamper.data.dataset import Dataset
from skinpamper.data.splits import Split, split_dataset
from skinpamper.errors import ConfigError
from skinpamper.runfolder import RunState
from skinpamper.runfolder.files import BEST_MODEL, CONFIG
from skinpamper.training.config import TrainConfig
from skinpamper.training.run import Run
from skinpamper.training.train import resume, train, write_metadata_model, write_scores

TRAINING_RECORD = ("precision", "xla", "jit_compile", "strategy", "replicas", "processes", "devices")
SEED_STEP = 100  # member k is seeded seed + 100 k: apart from the seeds of neighbouring experiments


def _member(model: keras.Model, name: str) -> keras.Model:
    """`model`'s own graph under `name`.

    A loaded model may be functional or Sequential (the seed CNN); a loaded Sequential has no `.input`
    until it is called, but both kinds have `.inputs` and `.outputs`. Reading the graph rather than
    calling the model keeps a member one level deep, which tf2onnx needs: a keras.applications
    backbone nested one level further lost its Normalization constants in the ONNX export.
    """
    return keras.Model(model.inputs[0], model.outputs[0], name=name)


def average_models(models: Sequence[keras.Model], image_size: int) -> keras.Model:
    """A model whose output is the mean of `models`' softmax outputs, each kept whole inside it."""
    inputs = keras.Input((image_size, image_size, 3), name="image")
    named = [_member(model, f"member_{i}") for i, model in enumerate(models, 1)]
    outputs = [member(inputs) for member in named]
    mean = layers.Average(dtype="float32", name="predictions")(outputs)
    return keras.Model(inputs, mean, name="ensemble")


def open_members(run_dirs: Sequence[str | Path]) -> list[Run]:
    """The runs at `run_dirs`, refused if unfinished, repeated, or disagreeing on split, input size or
    squaring; cheap (it reads small files only), so callers check before loading any data."""
    runs = [Run.open(path) for path in run_dirs]
    if len(runs) < 2:
        raise ConfigError("an ensemble needs at least two runs")
    if len({run.path.resolve() for run in runs}) < len(runs):
        raise ConfigError("the same run is listed twice; an ensemble needs different members")
    first, reference_config = runs[0], runs[0].config()
    for run in runs:
        if not run.state().finished:
            raise ConfigError(f"{run.path}: training has not finished; resume it first")
    reference = first.split_ids()
    for run in runs[1:]:
        if run.split_ids() != reference:
            raise ConfigError(
                f"{run.path}: its split differs from {first.path}'s; members must share one split "
                f"(train them with the same --split-seed), or a member has seen the ensemble's test images"
            )
        config = run.config()
        for key in ("image_size", "fit"):
            mine, theirs = getattr(config, key), getattr(reference_config, key)
            if mine != theirs:
                raise ConfigError(f"{run.path}: {key} is {mine}, but {first.path} has {theirs}")
    return runs


def make_ensemble(run_dirs: Sequence[str | Path], out: str | Path, dataset: Dataset) -> Path:
    """Write a run folder at `out` whose model.keras averages the members' best models.

    `dataset` must hold the members' images (their source, at their size). The new run keeps the
    first member's config, split and dataset record, lists the members in members.json, and is
    scored and calibrated on the shared validation split as a trained run is.
    """
    runs = open_members(run_dirs)
    first = runs[0]
    config = first.config()
    split = first.split(dataset)
    model = average_models([run.load_model(BEST_MODEL) for run in runs], config.image_size)
    run = Run.create(out)
    run.write_config(config)
    run.write_split(split, dataset)
    run.write_dataset_info(dataset, split, config)
    # How the members were trained (precision, XLA, devices), as the first one recorded it.
    trained = {key: value for key, value in runs[0].environment().items() if key in TRAINING_RECORD}
    run.write_environment(ensemble_of=len(runs), **trained)
    members = [
        {"run": str(member.path), "seed": member.config().seed, "test": member.metrics()["test"]}
        for member in runs
    ]
    run.write_members(members)
    write_metadata_model(run, dataset, split)
    run.save_model(model, BEST_MODEL)
    metrics = write_scores(run, model, dataset, split)
    score = metrics["val"]["balanced_accuracy"]
    run.write_state(RunState(epoch=config.epochs, best_epoch=config.epochs, best_score=score, finished=True))
    return run.path


def train_ensemble(
    dataset: Dataset,
    config: TrainConfig,
    members: int,
    out: str | Path,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    split: Split | None = None,
) -> Path:
    """Train `members` runs of `config` on one split into OUT/member-K, then average them into OUT.

    Member k is seeded `config.seed + 100 k` and all share `split`, by default the split of
    `config.effective_split_seed`.
    Calling it again after an interruption continues: finished members are kept and an interrupted
    one resumes from its last finished epoch (with the settings it was started with).
    """
    out = Path(out)
    if (out / CONFIG).exists():
        raise ConfigError(f"{out}: already holds a run; choose another output folder")
    split_seed = config.effective_split_seed
    if split is None:
        split = split_dataset(dataset, config.val_fraction, config.test_fraction, split_seed)
    folders = []
    for k in range(members):
        folder = out / f"member-{k + 1}"
        if (folder / CONFIG).exists():
            resume(folder, dataset, callbacks)
        else:
            member = config.replace(seed=config.seed + SEED_STEP * k, split_seed=split_seed)
            train(dataset, split, member, folder, callbacks)
        folders.append(folder)
    return make_ensemble(folders, out, dataset)
