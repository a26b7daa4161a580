"""A tqdm progress bar for training, as a Keras callback the CLI passes to `train`/`resume`.

Lives apart from the training loop so that the library stays silent and other front ends (a notebook,
a service) can pass their own callbacks instead.

Why not `tqdm.keras.TqdmCallback`: it keeps one epoch bar whose postfix each epoch's figures overwrite
(verbose=2 keeps each epoch's batch bar, but with training figures only, as validation arrives at the
epoch's end), so a terminal, a log file or a CI page shows the last epoch's validation balanced
accuracy and no history of it; and it re-renders every key of every batch's logs. This one writes a
permanent line per epoch in a fixed order (`format_logs`: val_bal_acc, lr, time included), with the
training time left at the mean pace of the epochs so far, and updates its bar's loss every `every`
batches.
"""

from __future__ import annotations

from time import monotonic
from typing import IO

import keras
from tqdm import tqdm


class TqdmProgress(keras.callbacks.Callback):
    """One bar per epoch over its batches, then one summary line with the validation figures."""

    def __init__(self, file: IO[str] | None = None, every: int = 10) -> None:
        super().__init__()
        self.file = file
        self.every = every  # update the loss shown on the bar every N batches; cheaper than every batch
        self.bar: tqdm | None = None
        self.started = monotonic()
        self.epochs_done = 0  # in this process: a resumed run starts its pace afresh

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.started, self.epochs_done = monotonic(), 0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._close()
        self.bar = tqdm(
            total=self.params.get("steps"),
            desc=f"epoch {epoch + 1}/{self.params.get('epochs')}",
            unit="batch",
            leave=False,
            file=self.file,
            dynamic_ncols=True,
        )

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.bar is None:
            return
        self.bar.update(1)
        if logs and batch % self.every == 0:
            self.bar.set_postfix(loss=f"{logs.get('loss', float('nan')):.3f}", refresh=False)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._close()
        self.epochs_done += 1
        epochs = self.params.get("epochs") or 0
        line = f"epoch {epoch + 1}/{epochs}: {format_logs(logs or {})}"
        if epochs > epoch + 1:
            pace = (monotonic() - self.started) / self.epochs_done
            line += f"  ~{time_left(pace * (epochs - epoch - 1))} of training left"
        tqdm.write(line, file=self.file)

    def on_train_end(self, logs: dict | None = None) -> None:
        self._close()

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def format_logs(logs: dict) -> str:
    """The headline numbers of an epoch in a fixed order, e.g. `loss 0.812  val_bal_acc 0.512`."""
    shown = (
        ("loss", "loss", "{:.3f}"),
        ("accuracy", "acc", "{:.3f}"),
        ("val_loss", "val_loss", "{:.3f}"),
        ("val_accuracy", "val_acc", "{:.3f}"),
        ("val_balanced_accuracy", "val_bal_acc", "{:.3f}"),
        ("lr", "lr", "{:.2e}"),
        ("seconds", "time", "{:.0f}s"),
    )
    return "  ".join(f"{label} {fmt.format(float(logs[key]))}" for key, label, fmt in shown if key in logs)


def time_left(seconds: float) -> str:
    """`45 s`, `7 min` or `1 h 05 min`: as precise as an estimate from a few epochs deserves."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"
