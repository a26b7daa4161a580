"""RunState: how far a run has got, as state.json records it (written last in each epoch: the commit)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class RunState:
    """Progress of a run; epochs are counted from 1, and 0 means none has finished."""

    epoch: int = 0
    best_epoch: int = 0
    best_score: float | None = None  # validation balanced accuracy of model.keras
    stopped_early: bool = False
    finished: bool = False  # training is over and metrics.json is written
    # Dropout's random-stream positions: Keras does not save them in .keras, and without them a resumed
    # run would draw different dropout masks from an uninterrupted one.
    seed_states: tuple[tuple[int, ...], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "seed_states": [list(s) for s in self.seed_states]}

    @classmethod
    def from_dict(cls, saved: dict[str, Any]) -> RunState:
        """From state.json's content, already checked against its schema (schemas.StateRecord)."""
        seeds = tuple(tuple(s) for s in saved.get("seed_states", ()))
        return cls(**{**saved, "seed_states": seeds})
