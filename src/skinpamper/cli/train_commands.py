"""`skinpamper train`: a new run from flags or a TOML config, or `--resume` of an interrupted one."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from skinpamper.cli.common import FiniteFloat, decoding_bar, resolve_data
from skinpamper.data.load import FORMATS
from skinpamper.imaging import FITS
from skinpamper.training.config import IMBALANCE, MEMBERS, PRECISIONS, XLA


def echo_run_summary(run_dir: Path, report: Path) -> None:
    """Print the test figures of a finished run and where its report is."""
    from skinpamper import NOT_A_DIAGNOSIS
    from skinpamper.training.run import Run

    metrics = Run.open(run_dir).metrics()
    test = metrics["test"]
    recalls = "  ".join(f"{code} {value:.2f}" for code, value in test["per_class_recall"].items())
    click.echo(
        f"test ({test['n']} images): balanced accuracy {test['balanced_accuracy']:.3f}, "
        f"accuracy {test['accuracy']:.3f}"
    )
    click.echo(f"recall per class: {recalls}")
    if "with_metadata" in metrics:
        fused = metrics["with_metadata"]["test"]
        click.echo(
            f"with age, sex, site: balanced accuracy {fused['balanced_accuracy']:.3f}, "
            f"accuracy {fused['accuracy']:.3f}"
        )
    if "abstention" in metrics:
        kept = metrics["abstention"]["test"]
        shares = kept["shares"]
        click.echo(
            f"abstention: {100 * shares['out_of_distribution']:.1f}% of test refused as out of distribution, "
            f"{100 * shares.get('unfamiliar', 0.0):.1f}% unfamiliar, "
            f"{100 * shares['uncertain']:.1f}% uncertain; balanced accuracy of those answered ok "
            f"{kept['balanced_accuracy_ok'] or 0:.3f}"
        )
    click.echo(f"run folder: {run_dir}\nreport: {report}\nmodel card: {run_dir / 'model_card.md'}")
    click.echo(NOT_A_DIAGNOSIS)


def echo_note(text: str) -> None:
    """What drawing the split had to settle for (e.g. a class too small to reach every part)."""
    click.echo(f"note: {text}", err=True)


@click.command("train", short_help="Train a model into a run folder with a report.")
@click.option(
    "--data",
    type=click.Path(),
    help="Dataset path [default: $SKINPAMPER_DATA, else DermaMNIST; with --resume, the run's own].",
)
@click.option(
    "--model", help="Registered model name (see `skinpamper models`) [default: efficientnet_lite0]."
)
@click.option(
    "--image-size",
    type=click.IntRange(4, 1024),
    help="Square side in pixels [default: the model's own: 128 for efficientnet_lite0, 28 for compact_cnn].",
)
@click.option(
    "--width",
    type=FiniteFloat(),
    help="Channel multiplier, for models that take one (compact_cnn) [default: 1.0].",
)
@click.option(
    "--epochs",
    type=click.IntRange(1),
    help="Epochs [default: the model's own: 8 pretrained, 25 from scratch].",
)
@click.option("--batch-size", type=click.IntRange(1), help="Batch size [default: 64].")
@click.option("--learning-rate", type=FiniteFloat(), help="Adam learning rate [default: 1e-3].")
@click.option(
    "--imbalance",
    type=click.Choice(IMBALANCE),
    help="Class-imbalance strategy, applied inside the training split only [default: class_weight].",
)
@click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    help="Compute precision; auto: bfloat16 on Ampere-or-newer GPUs and on CPUs with native bf16, "
    "float16 with loss scaling on older GPUs, else float32 (saved models are float32) [default: auto].",
)
@click.option(
    "--xla",
    type=click.Choice(XLA),
    help="XLA compilation; auto: off on CPUs (measured slower), Keras's choice on GPUs [default: auto].",
)
@click.option(
    "--fit", type=click.Choice(FITS), help="How a non-square image becomes square [default: squash]."
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), help="Dataset form [default: auto].")
@click.option("--seed", type=int, help="Seed for split, weights and augmentation [default: 0].")
@click.option(
    "--split-seed",
    type=int,
    help="Seed for the split alone, to train ensemble members on one split [default: --seed].",
)
@click.option("--no-augment", is_flag=True, default=None, help="Train without augmentation.")
@click.option(
    "--no-pretrained", is_flag=True, default=None, help="Start ImageNet backbones from random weights."
)
@click.option(
    "--colour-constancy/--no-colour-constancy",
    default=None,
    help=(
        "Put a shades-of-grey colour-constancy layer in front of the model [default: off]. "
        "It weakens the refusal of images that are not dermoscopy (docs/trust.md)."
    ),
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    help="TOML file with any of these settings; flags override it.",
)
@click.option(
    "--members",
    type=click.IntRange(1),
    help="Train this many runs on one split (seeds SEED, SEED+100, ...) into OUT/member-K and average "
    "them into OUT; 1 trains a single run; run the same command again to continue an interrupted one "
    f"[default: {MEMBERS} for models trained from scratch (generalised best to other clinics), "
    "1 for pretrained ones].",
)
@click.option(
    "--devices",
    help="TensorFlow: train on 'all' or N devices of this machine (GPUs, else the CPUs "
    "$SKINPAMPER_CPU_DEVICES makes) with MirroredStrategy; --batch-size stays the global batch [default: 1].",
)
@click.option(
    "--distributed",
    is_flag=True,
    help="JAX: train data-parallel across processes (one per host) with Keras's distribution API; "
    "process 0 writes the run.",
)
@click.option("--coordinator", help="With --distributed: process 0's host:port [$JAX_COORDINATOR_ADDRESS].")
@click.option("--num-processes", type=click.IntRange(1), help="With --distributed [$JAX_NUM_PROCESSES].")
@click.option("--process-id", type=click.IntRange(0), help="With --distributed [$JAX_PROCESS_ID].")
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
    members: int | None,
    fmt: str | None,
    no_augment: bool | None,
    no_pretrained: bool | None,
    devices: str | None,
    distributed: bool,
    coordinator: str | None,
    num_processes: int | None,
    process_id: int | None,
    **flags,
) -> None:
    """Train a model on a lesion-grouped split and write a run folder with its report.

    \b
    Examples:
      skinpamper train --data ~/data/ham10000 --model seed --epochs 25 --out runs/seed
      skinpamper train --config my.toml --out runs/exp1
      skinpamper train --model compact_cnn --members 3 --out runs/ensemble
      skinpamper train --resume runs/exp1
      skinpamper train --devices all --out runs/gpus
      KERAS_BACKEND=jax skinpamper train --distributed --coordinator host0:1234 \\
          --num-processes 2 --process-id 0 --out runs/two-hosts
    """
    from skinpamper.errors import ConfigError
    from skinpamper.progress import TqdmProgress
    from skinpamper.training import distributed as cluster_training
    from skinpamper.training.devices import resolve_device_count, split_host_cpu
    from skinpamper.workflows.training import plan_run, resume_run, train_run

    split_host_cpu()  # before anything makes the backend set up its devices
    if resume_dir and (devices or distributed):
        option = "--devices" if devices else "--distributed"
        raise ConfigError(
            f"{option} does not apply to --resume: a run resumes on the devices its config records"
        )
    if resume_dir:
        trained = resume_run(resume_dir, data, callbacks=[TqdmProgress()], bar=decoding_bar)
        echo_run_summary(trained.folder, trained.report)
        return
    if devices is not None:
        flags["devices"] = resolve_device_count(devices)
    cluster = (
        cluster_training.resolve_cluster(coordinator, num_processes, process_id) if distributed else None
    )
    enabled = None if no_augment is None else not no_augment
    pretrained = None if no_pretrained is None else not no_pretrained
    plan = plan_run(
        config_file,
        out,
        members,
        data_format=fmt,
        pretrained=pretrained,
        **{"augment.enabled": enabled},
        **flags,
    )
    if data or not plan.config.data_path:
        plan = plan.reading(resolve_data(data, plan.config.image_size))
    try:
        trained = train_run(
            plan, callbacks=[TqdmProgress()], cluster=cluster, bar=decoding_bar, note=echo_note
        )
    except KeyboardInterrupt:
        again = (
            "run the same command again" if plan.members > 1 else f"skinpamper train --resume {plan.folder}"
        )
        if cluster is not None:
            again += " on process 0's machine, without --distributed"
        click.echo(f"interrupted; finished epochs are kept: {again}", err=True)
        sys.exit(130)
    if trained.report is not None:  # None on the processes of a cluster that do not write the run
        echo_run_summary(trained.folder, trained.report)
