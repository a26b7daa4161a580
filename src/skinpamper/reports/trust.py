"""Tables and figures of when to trust the model: per subgroup, and when it abstains.

`subgroup_table` and `plot_subgroup_forest` show `scoring.subgroups.subgroup_report` (one row per
sex, age band, site... with 95% intervals; a group whose interval lies wholly below the overall
figure is marked); `abstention_table` and `plot_risk_coverage` show what refusing out-of-distribution
and unsure images costs in coverage and buys in accuracy. The evaluation report, the run report and
the model card share them, so the three cannot disagree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, overload

import numpy as np
from matplotlib.figure import Figure

from skinpamper.data.summary import Table
from skinpamper.reports.html import figure_item
from skinpamper.reports.plots import one_panel

if TYPE_CHECKING:
    from matplotlib.axes import Axes

FIGURE_NAMES = {
    "balanced_accuracy": "balanced accuracy",
    "macro_auc": "macro AUC",
    "mel_sensitivity": "mel sensitivity",
}
FACTOR_NAMES = {"age": "age band", "sex": "sex", "localization": "body site", "dx_type": "how diagnosed"}


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _cell(row: dict[str, Any], name: str) -> str:
    value, interval = row.get(name), row.get(f"{name}_ci95")
    if value is None:
        return "n/a"
    text = f"{value:.3f}" if name == "macro_auc" else _share(value)
    if interval:
        low, high = interval
        text += f" ({low:.3f}-{high:.3f})" if name == "macro_auc" else f" ({100 * low:.1f}-{100 * high:.1f})"
    return text + (" ▼" if name in row.get("below_overall", ()) else "")


def subgroup_table(report: dict[str, Any], scored: str) -> Table:
    """One row per subgroup, the overall figures first; "too few" where a group is under the minimum."""
    rows = [("all", "", f"{report['overall']['n']:,}", *(_cell(report["overall"], n) for n in FIGURE_NAMES))]
    for row in report["groups"]:
        factor = FACTOR_NAMES.get(row["factor"], row["factor"])
        cells = ("too few",) * len(FIGURE_NAMES) if row["too_few"] else (_cell(row, n) for n in FIGURE_NAMES)
        rows.append((factor, row["group"], f"{row['n']:,}", *cells))
    threshold = report["mel_threshold_at_90_specificity"]
    cut = "undefined (no melanoma or no other class)" if threshold is None else f"{threshold:.3f}"
    note = (
        f"{scored.capitalize()}. Brackets: 95% bootstrap interval ({report['bootstrap']['n_boot']:,} "
        f"resamples of {report['bootstrap']['unit']}s within each group). ▼: the interval lies wholly below "
        "the figure for all images. Melanoma sensitivity is read at one cut for everyone, the one that "
        f"gives 90% specificity on all images (p(mel) ≥ {cut}). Groups under {report['min_size']} images: "
        "too few."
    )
    return Table(
        "By subgroup", ("factor", "group", "images", *FIGURE_NAMES.values()), tuple(rows), "llrrrr", note
    )


@overload
def plot_subgroup_forest(report: dict[str, Any], figure: str = ..., *, ax: None = None) -> Figure: ...
@overload
def plot_subgroup_forest(report: dict[str, Any], figure: str = ..., *, ax: Axes) -> Axes: ...
def plot_subgroup_forest(
    report: dict[str, Any], figure: str = "balanced_accuracy", *, ax: Axes | None = None
) -> Figure | Axes:
    """Each big-enough subgroup's figure with its interval, against the overall figure (dashed); on
    `ax` when given."""
    rows = [row for row in report["groups"] if not row["too_few"] and row.get(figure) is not None]
    shown, ax = one_panel(ax, (7.0, 1.2 + 0.28 * max(len(rows), 1)))
    labels = [f"{FACTOR_NAMES.get(r['factor'], r['factor'])}: {r['group']} (n={r['n']:,})" for r in rows]
    values = np.array([r[figure] for r in rows])
    intervals = np.array([r[f"{figure}_ci95"] or [r[figure]] * 2 for r in rows]).reshape(-1, 2)
    positions = np.arange(len(rows))[::-1]
    below = [figure in r.get("below_overall", ()) for r in rows]
    colours = ["#c2410c" if b else "#2a6fdb" for b in below]
    ax.hlines(positions, intervals[:, 0], intervals[:, 1], colors=colours, linewidth=2)
    ax.scatter(values, positions, color=colours, zorder=3)
    overall = report["overall"].get(figure)
    if overall is not None:
        ax.axvline(overall, linestyle="--", color="0.4", label=f"all images: {overall:.3f}")
        ax.legend(loc="lower right", fontsize="small")
    ax.set_yticks(positions, labels, fontsize="small")
    ax.set_xlabel(f"{FIGURE_NAMES[figure]} (95% interval; orange: wholly below all images)")
    ax.set_title(f"{FIGURE_NAMES[figure].capitalize()} by subgroup")
    ax.grid(axis="x", alpha=0.3)
    return shown


STATUS_NAMES = {
    "ok": "answered ok",
    "unfamiliar": "unfamiliar dermoscopy (answered, with a warning)",
    "uncertain": "uncertain (below the confidence threshold)",
    "out_of_distribution": "out of distribution (refused: not dermoscopy)",
}


def status_table(summary: dict[str, Any]) -> Table:
    """Per status: how many images got it, and how well the model did on them, melanoma included."""

    def figure(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    rows = tuple(
        (
            STATUS_NAMES[status],
            f"{row['n']:,}",
            _share(row["share"]),
            figure(row["balanced_accuracy"]),
            f"{row['melanomas']:,}",
            figure(row["mel_sensitivity"]),
        )
        for status, row in summary["by_status"].items()
    )
    note = (
        "Melanoma sensitivity: the share of the melanomas given that status whose top class is melanoma. "
        "A user testing the model on their own clinic's images sees here how much is answered, and how well."
    )
    rule = summary.get("melanoma_rule_out")
    if rule is not None and rule["sensitivity"] is not None:
        note += (
            f" Melanoma rule-out cut (p(mel) ≥ {rule['threshold']:.3f}, fitted on validation for 90% "
            f"sensitivity): sensitivity {_share(rule['sensitivity'])}, specificity "
            f"{_share(rule['specificity'])} on these images."
        )
    columns = ("status", "images", "share", "balanced accuracy", "melanomas", "mel sensitivity")
    return Table("By status", columns, rows, "lrrrrr", note)


def abstention_table(summary: dict[str, Any], rules: dict[str, Any] | None, tta: bool) -> Table:
    """The share of each status on a labelled set, and balanced accuracy of all images against that of
    the images answered ok (records made before `unfamiliar` existed have no such share)."""
    shares = summary["shares"]
    unfamiliar = "unfamiliar" in shares  # records made before it have no such share
    rows = (
        ("answered ok", _share(shares["ok"])),
        *([("unfamiliar (answered, with a warning)", _share(shares["unfamiliar"]))] if unfamiliar else []),
        ("uncertain (below the confidence threshold)", _share(shares["uncertain"])),
        ("out of distribution (refused)", _share(shares["out_of_distribution"])),
        ("balanced accuracy, all images", _share(summary["balanced_accuracy_all"])),
        ("balanced accuracy, images not refused", _share(summary["balanced_accuracy_in_distribution"])),
        ("balanced accuracy, images answered ok", _share(summary["balanced_accuracy_ok"])),
        ("area under the risk-coverage curve (AURC, lower is better)", f"{summary['aurc']:.3f}"),
    )
    note = "Statuses as `skinpamper predict` would give them"
    if rules is not None:
        choice = rules["confidence"]["tta" if tta else "plain"]
        reached = "reached" if choice["reached"] else "not reached; it keeps half the images instead"
        note += (
            f": out of distribution above an OOD score of {rules['ood_threshold']:.1f} (keeps "
            f"{100 * rules['ood_keep']:.0f}% of validation images); uncertain below a top probability of "
            f"{choice['threshold']:.2f}, the confidence at which validation balanced accuracy reaches "
            f"{100 * rules['target_balanced_accuracy']:.0f}% ({reached}; {100 * choice['coverage']:.0f}% of "
            "validation images kept)"
        )
        if rules.get("dermoscopy_threshold") is not None:
            note += (
                f"; refused as not dermoscopy above a dermoscopy-detector log-odds of "
                f"{rules['dermoscopy_threshold']:.2f} or an OOD score of {rules['far_ood_threshold']:.1f} "
                f"(each keeps {100 * rules['dermoscopy_keep']:.0f}% of validation dermoscopy, plain and "
                "under simulated clinic shifts); unfamiliar above the OOD score, answered with a warning"
            )
    return Table("When the model abstains", ("", ""), rows, "lr", note + ".")


@overload
def plot_risk_coverage(
    curve: dict[str, Any], threshold_coverage: float | None = ..., *, ax: None = None
) -> Figure: ...
@overload
def plot_risk_coverage(
    curve: dict[str, Any], threshold_coverage: float | None = ..., *, ax: Axes
) -> Axes: ...
def plot_risk_coverage(
    curve: dict[str, Any], threshold_coverage: float | None = None, *, ax: Axes | None = None
) -> Figure | Axes:
    """Error rate of the images kept, most confident first, against the share kept; on `ax` when given."""
    shown, ax = one_panel(ax, (6.2, 4.4))
    coverage, risk = np.asarray(curve["coverage"]), np.asarray(curve["risk"])
    ax.plot(coverage, risk, color="#2a6fdb", label=f"AURC {curve['aurc']:.3f}")
    ax.axhline(risk[-1], linestyle=":", color="0.5", label=f"answering everything: {risk[-1]:.3f}")
    if threshold_coverage is not None:
        ax.axvline(
            threshold_coverage, linestyle="--", color="#c2410c", label="the run's confidence threshold"
        )
    ax.set_xlim(0, 1.01)
    ax.set_ylim(0, max(float(risk.max()) * 1.1, 0.05))
    ax.set_xlabel("coverage (share of images answered, most confident first)")
    ax.set_ylabel("error rate of the answered images")
    ax.set_title("Risk-coverage")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize="small")
    return shown


def trust_context(
    subgroups: dict[str, Any] | None,
    summary: dict[str, Any] | None,
    rules: dict[str, Any] | None,
    curve: dict[str, Any] | None,
    tta: bool,
    scored: str,
) -> dict[str, Any]:
    """What the pages' trust sections show, from whichever of the four records exist."""
    names = ("abstention_table", "status_table", "risk_coverage", "subgroup_table", "forest")
    context: dict[str, Any] = dict.fromkeys(names)
    if summary is not None:
        context["abstention_table"] = abstention_table(summary, rules, tta)
        if "by_status" in summary:
            context["status_table"] = status_table(summary)
    if curve is not None:
        at = None if summary is None else summary.get("confident_share")
        caption = (
            f"Error rate of the images the model is surest of, as more are answered ({scored}, calibrated). "
            "A steep start and a low area mean its confidence ranks its mistakes last; the dashed line is "
            "where its 'uncertain' threshold cuts."
        )
        context["risk_coverage"] = figure_item(plot_risk_coverage(curve, at), "Risk-coverage", caption)
    if subgroups is not None:
        context["subgroup_table"] = subgroup_table(subgroups, scored)
        if any(not row["too_few"] for row in subgroups["groups"]):
            caption = "Each subgroup with its 95% interval; dashed: all images. Orange: wholly below."
            forest = plot_subgroup_forest(subgroups)
            context["forest"] = figure_item(forest, "Balanced accuracy by subgroup", caption)
    return context
