"""Commands that read datasets without training: `data info|check|fetch`, `explore`, `models`."""

from __future__ import annotations

from pathlib import Path

import click

from skinpamper.cli.common import FiniteFloat, Group, data_options, load_data, progress_bar


@click.group(cls=Group)
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
@click.option("--val", type=FiniteFloat(), default=0.1, show_default=True, help="Validation fraction.")
@click.option("--test", type=FiniteFloat(), default=0.2, show_default=True, help="Test fraction.")
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


@click.command(short_help="Plot the data as the original notebook did.")
@click.argument("path", type=click.Path())
@click.option("--out", type=click.Path(), required=True, help="Folder for the PNGs and index.html.")
@data_options
def explore(path: str, out: str, image_size: int | None, fmt: str, fit: str) -> None:
    """The original notebook's exploration: pixel rows as images, cases by age, class, sex, site.

    Example: skinpamper explore ~/data/ham10000 --out explore/
    """
    from skinpamper.reports.explore import write_explore

    page = write_explore(load_data(path, image_size, fmt, fit), Path(out))
    click.echo(f"wrote {page}")


@click.command(short_help="List the models with their sizes, costs and weights.")
def models() -> None:
    """List the registered models: name, default and smallest input size, parameters, forward GFLOPs
    per image, and where pretrained weights come from.

    GFLOPs are at the default size, counting a multiply-add as 2; the cost grows with the square of
    --image-size. Training an image costs about 3x its forward pass. Weights: "wheel" installs with
    the package (offline), "download" is fetched by Keras at run time, "-" trains from scratch.

    Example: skinpamper models
    """
    from skinpamper.models import get_model_info, list_models
    from skinpamper.models.flops import measure_model

    click.echo(f"{'name':20} {'size':>5} {'min':>4} {'params':>12} {'GFLOPs':>7} {'weights':>8}  description")
    for name in list_models():
        info = get_model_info(name)
        cost = measure_model(name)
        gflops = cost.flops / 1e9
        weights = "-" if info.weights is None else "wheel" if info.weights.offline else "download"
        click.echo(
            f"{name:20} {info.default_size:>5} {info.min_size:>4} {cost.params:>12,} {gflops:>7.3f} "
            f"{weights:>8}  {info.description}"
        )
