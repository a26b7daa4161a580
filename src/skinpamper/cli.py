"""The `skinpamper` command: one sub-command per job, each a thin layer over one library call.

Library errors (SkinPamperError) become one clean line on stderr and exit status 1; Ctrl-C exits 130.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import click
from tqdm import tqdm

from skinpamper import __version__
from skinpamper.config import IMBALANCE
from skinpamper.data.load import FORMATS
from skinpamper.errors import SkinPamperError
from skinpamper.imaging import FITS


@contextmanager
def progress_bar(description: str, unit: str = "img", scale: bool = False):
    """A tqdm bar on stderr, fed by the library's (done, total) progress callbacks."""
    bar = tqdm(desc=description, unit=unit, unit_scale=scale, leave=False, file=sys.stderr, disable=None)

    def update(done: int, total: int | None) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        yield update
    finally:
        bar.close()


def load_data(path: str, size: int | None, fmt: str, fit: str):
    """Load a dataset with a progress bar (the bar only appears while images are decoded)."""
    from skinpamper.data.load import load_dataset

    with progress_bar(f"decoding {Path(path).name}") as update:
        return load_dataset(path, size=size, fmt=fmt, fit=fit, progress=update)


def data_options(command: Callable) -> Callable:
    """--image-size, --format and --fit, shared by every command that reads a dataset."""
    command = click.option(
        "--fit",
        type=click.Choice(FITS),
        default="squash",
        show_default=True,
        help="How a non-square image becomes square.",
    )(command)
    command = click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default="auto",
        show_default=True,
        help="Dataset form; auto recognises it.",
    )(command)
    return click.option(
        "--image-size",
        type=click.IntRange(4, 1024),
        default=None,
        help="Square side in pixels [default: the file's own, else 28].",
    )(command)


class Group(click.Group):
    """Turns library errors into one line and a non-zero exit, without a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except SkinPamperError as exc:
            raise click.ClickException(str(exc)) from None
        except KeyboardInterrupt:
            click.echo("interrupted; finished work is kept", err=True)
            sys.exit(130)


@click.group(cls=Group)
@click.version_option(__version__, prog_name="skinpamper")
def main() -> None:
    """Skin Pamper: skin-lesion classifiers on HAM10000. A research tool, not a medical device."""


@main.group(cls=Group)
def data() -> None:
    """Inspect, check and download datasets."""


@data.command("info")
@click.argument("path", type=click.Path())
@data_options
def data_info(path: str, image_size: int | None, fmt: str, fit: str) -> None:
    """Images, lesions, classes, age/sex/localization and missing values of a dataset.

    Example: skinpamper data info ~/data/ham10000
    """
    from skinpamper.data.summary import format_summary, summarize

    click.echo(format_summary(summarize(load_data(path, image_size, fmt, fit))))


@data.command("check")
@click.argument("path", type=click.Path())
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the split to check.")
@click.option("--val", type=float, default=0.1, show_default=True, help="Validation fraction.")
@click.option("--test", type=float, default=0.2, show_default=True, help="Test fraction.")
@data_options
def data_check(
    path: str, seed: int, val: float, test: float, image_size: int | None, fmt: str, fit: str
) -> None:
    """Lesions shared between splits and identical images across splits and within the set.

    Exits 1 when the split leaks (a lesion or an identical image in two parts).
    Example: skinpamper data check ~/data/ham10000 --seed 1
    """
    from skinpamper.data.check import check_dataset
    from skinpamper.data.splits import split_dataset

    dataset = load_data(path, image_size, fmt, fit)
    split = split_dataset(dataset, val=val, test=test, seed=seed)
    report = check_dataset(dataset, split)
    sizes = ", ".join(f"{name} {len(idx)}" for name, idx in split.parts().items())
    click.echo(f"{dataset.source}: {len(dataset)} images; split (seed {seed}): {sizes}")
    if split.note:
        click.echo(f"note: {split.note}")
    if dataset.has_lesion_ids:
        lesions = dataset.meta["lesion_id"].nunique()
        click.echo(f"lesions: {lesions}; shared between splits: {len(report.shared_lesions)}")
        if not report.shared_lesions.empty:
            click.echo(report.shared_lesions.head(20).to_string(index=False))
    click.echo(
        f"groups of identical images (same pixels at {dataset.image_size[0]} px): {len(report.duplicates)}"
    )
    if not report.duplicates.empty:
        click.echo(report.duplicates.to_string(index=False))
    if not report.clean:
        raise click.ClickException("the split leaks: see the lesions or identical images listed above")
    click.echo("no lesion and no identical image is in two splits")


@data.command("fetch")
@click.argument("name", required=False)
@click.option("--list", "show_list", is_flag=True, help="List the datasets that can be fetched.")
def data_fetch(name: str | None, show_list: bool) -> None:
    """Download a dataset into $SKINPAMPER_HOME (resumable, checksummed, atomic).

    Example: skinpamper data fetch dermamnist_64
    """
    from skinpamper.data.download import fetch_dataset
    from skinpamper.data.registry import DATASETS

    if show_list or name is None:
        for entry in DATASETS.values():
            click.echo(f"{entry.name:16} {entry.description}")
        return
    with progress_bar(f"fetching {name}", unit="B", scale=True) as update:
        folder = fetch_dataset(name, progress=update)
    click.echo(str(folder))


@main.command()
@click.argument("path", type=click.Path())
@click.option("--out", type=click.Path(), required=True, help="Folder for the PNGs and index.html.")
@data_options
def explore(path: str, out: str, image_size: int | None, fmt: str, fit: str) -> None:
    """The original notebook's exploration: pixel rows as images, cases by age, class, sex, site.

    Example: skinpamper explore ~/data/ham10000 --out explore/
    """
    from skinpamper.explore import write_explore

    page = write_explore(load_data(path, image_size, fmt, fit), Path(out))
    click.echo(f"wrote {page}")


@main.command()
def models() -> None:
    """List the registered models: name, default input size, parameters, forward GFLOPs per image.

    GFLOPs are at the default size, counting a multiply-add as 2; the cost grows with the square of
    --image-size. Training an image costs about 3x its forward pass.

    Example: skinpamper models
    """
    from skinpamper.models import get_model_info, list_models
    from skinpamper.models.flops import measure_model

    click.echo(f"{'name':20} {'size':>5} {'params':>12} {'GFLOPs':>7}  description")
    for name in list_models():
        info = get_model_info(name)
        cost = measure_model(name)
        gflops = cost.flops / 1e9
        click.echo(f"{name:20} {info.default_size:>5} {cost.params:>12,} {gflops:>7.3f}  {info.description}")


def resolve_data(path: str | None) -> str:
    """--data, else $SKINPAMPER_DATA, else DermaMNIST (28 px, 19 MB) downloaded into $SKINPAMPER_HOME."""
    if path:
        return path
    if os.environ.get("SKINPAMPER_DATA"):
        return os.environ["SKINPAMPER_DATA"]
    from skinpamper.data.download import fetch_dataset

    click.echo(
        "no --data and no $SKINPAMPER_DATA: fetching DermaMNIST (its split has no lesion ids)", err=True
    )
    with progress_bar("fetching dermamnist", unit="B", scale=True) as update:
        return str(fetch_dataset("dermamnist", progress=update))


def echo_run_summary(run_dir: Path) -> None:
    """Print the test figures of a finished run and where its report is."""
    from skinpamper import NOT_A_DIAGNOSIS
    from skinpamper.report import write_run_report
    from skinpamper.run import Run

    report = write_run_report(run_dir)
    test = Run.open(run_dir).metrics()["test"]
    recalls = "  ".join(f"{code} {value:.2f}" for code, value in test["per_class_recall"].items())
    click.echo(
        f"test ({test['n']} images): balanced accuracy {test['balanced_accuracy']:.3f}, "
        f"accuracy {test['accuracy']:.3f}"
    )
    click.echo(f"recall per class: {recalls}")
    click.echo(f"run folder: {run_dir}\nreport: {report}")
    click.echo(NOT_A_DIAGNOSIS)


@main.command("train")
@click.option("--data", type=click.Path(), help="Dataset path [default: $SKINPAMPER_DATA, else DermaMNIST].")
@click.option("--model", help="Registered model name (see `skinpamper models`) [default: seed].")
@click.option("--image-size", type=click.IntRange(4, 1024), help="Square side in pixels [default: 28].")
@click.option("--epochs", type=click.IntRange(1), help="Epochs [default: 25].")
@click.option("--batch-size", type=click.IntRange(1), help="Batch size [default: 64].")
@click.option("--learning-rate", type=float, help="Adam learning rate [default: 1e-3].")
@click.option(
    "--imbalance",
    type=click.Choice(IMBALANCE),
    help="Class-imbalance strategy, applied inside the training split only.",
)
@click.option(
    "--fit", type=click.Choice(FITS), help="How a non-square image becomes square [default: squash]."
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), help="Dataset form [default: auto].")
@click.option("--seed", type=int, help="Seed for split, weights and augmentation [default: 0].")
@click.option("--no-augment", is_flag=True, default=None, help="Train without augmentation.")
@click.option(
    "--no-pretrained", is_flag=True, default=None, help="Start ImageNet backbones from random weights."
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    help="TOML file with any of these settings; flags override it.",
)
@click.option("--out", type=click.Path(file_okay=False), help="New run folder [default: runs/MODEL-TIME].")
@click.option(
    "--resume",
    "resume_dir",
    type=click.Path(file_okay=False),
    help="Continue an interrupted run folder from its last finished epoch.",
)
def train_command(
    data: str | None,
    config_file: str | None,
    out: str | None,
    resume_dir: str | None,
    fmt: str | None,
    no_augment: bool | None,
    no_pretrained: bool | None,
    **flags,
) -> None:
    """Train a model on a lesion-grouped split and write a run folder with its report.

    \b
    Examples:
      skinpamper train --data ~/data/ham10000 --model seed --epochs 25 --out runs/seed
      skinpamper train --config my.toml --out runs/exp1
      skinpamper train --resume runs/exp1
    """
    from skinpamper.config import TrainConfig, load_config
    from skinpamper.data.splits import split_dataset
    from skinpamper.progress import TqdmProgress
    from skinpamper.run import Run
    from skinpamper.train import resume, train

    if resume_dir:
        config = Run.open(resume_dir).config()
        dataset = load_data(config.data_path, config.image_size, config.data_format, config.fit)
        run_dir = resume(resume_dir, dataset, callbacks=[TqdmProgress()])
    else:
        config = load_config(config_file) if config_file else TrainConfig()
        enabled = None if no_augment is None else not no_augment
        pretrained = None if no_pretrained is None else not no_pretrained
        config = config.replace(
            data_format=fmt, pretrained=pretrained, **{"augment.enabled": enabled}, **flags
        )
        config = config.replace(data_path=resolve_data(data) if data or not config.data_path else None)
        run_dir = Path(out or f"runs/{config.model}-{time.strftime('%Y%m%d-%H%M%S')}")
        dataset = load_data(config.data_path, config.image_size, config.data_format, config.fit)
        split = split_dataset(dataset, config.val_fraction, config.test_fraction, config.seed)
        if split.note:
            click.echo(f"note: {split.note}", err=True)
        try:
            train(dataset, split, config, run_dir, callbacks=[TqdmProgress()])
        except KeyboardInterrupt:
            click.echo(
                f"interrupted; finished epochs are kept: skinpamper train --resume {run_dir}", err=True
            )
            sys.exit(130)
    echo_run_summary(Path(run_dir))


@main.command("evaluate")
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--data", type=click.Path(), help="Score on this labelled set instead of the run's own split.")
@click.option(
    "--split",
    "part",
    type=click.Choice(("test", "val", "train")),
    default="test",
    show_default=True,
    help="Part of the run's own split to score (ignored with --data).",
)
@click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True, help="Form of --data."
)
@click.option(
    "--tta/--no-tta",
    default=True,
    show_default=True,
    help="Also score the mean over the 8 flips/rotations of each image.",
)
@click.option(
    "--bootstrap",
    type=click.IntRange(0),
    default=1000,
    show_default=True,
    help="Bootstrap resamples for the 95% intervals (by lesion where lesion ids exist).",
)
@click.option(
    "--out", type=click.Path(file_okay=False), required=True, help="Folder for metrics.json, predictions.csv."
)
def evaluate_command(
    run_dir: str, data: str | None, part: str, fmt: str, tta: bool, bootstrap: int, out: str
) -> None:
    """Score a trained run on its test split or on any labelled set (e.g. an external test set).

    \b
    Examples:
      skinpamper evaluate runs/seed --out eval/seed
      skinpamper evaluate runs/seed --data ~/external/ --out eval/external
    """
    from skinpamper import NOT_A_DIAGNOSIS
    from skinpamper.evaluate import evaluate, write_evaluation
    from skinpamper.run import Run

    config = Run.open(run_dir).config()
    source = data or config.data_path
    dataset = load_data(source, config.image_size, fmt if data else config.data_format, config.fit)
    evaluation = evaluate(run_dir, dataset, part, external=bool(data), tta=tta, n_boot=bootstrap)
    folder = write_evaluation(evaluation, out)
    for name, metrics in (("plain", evaluation.metrics), ("8-view TTA", evaluation.metrics_tta)):
        if metrics is None:
            continue
        ci = metrics["ci95"]["balanced_accuracy"]
        interval = f" (95% CI {ci[0]:.3f}-{ci[1]:.3f})" if ci else ""
        auc = "n/a" if metrics["macro_auc"] is None else f"{metrics['macro_auc']:.3f}"
        click.echo(
            f"{name}: {metrics['n']} images ({evaluation.part}), balanced accuracy "
            f"{metrics['balanced_accuracy']:.3f}{interval}, accuracy {metrics['accuracy']:.3f}, "
            f"macro AUC {auc}"
        )
    click.echo(f"wrote {folder / 'metrics.json'} and {folder / 'predictions.csv'}")
    click.echo(NOT_A_DIAGNOSIS)


def run() -> None:
    """Entry point that keeps TensorFlow's start-up chatter off the user's terminal."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
