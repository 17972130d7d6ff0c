"""Trainer callbacks shared by the reranker and LoRA trainers (transformers is imported inside)."""

from __future__ import annotations

import time
from typing import Any


def time_budget(seconds: float | None) -> Any:
    """A callback that stops training, saving a checkpoint, once ``seconds`` of it have passed.

    Its ``stopped_early`` attribute says whether it did. ``None``: no budget.
    """
    from transformers import TrainerCallback

    class TimeBudget(TrainerCallback):
        def __init__(self) -> None:
            self.started = time.perf_counter()
            self.stopped_early = False

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            self.started = time.perf_counter()  # loading and resuming are not training

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            if seconds is not None and time.perf_counter() - self.started > seconds:
                control.should_training_stop = True
                control.should_save = True
                self.stopped_early = True
            return control

    return TimeBudget()


def quiet_logs(trainer: Any) -> None:
    """Keep the trainer's progress bar (on a terminal) but not its printed dict per logged
    step: the losses are kept in the trained model's ``ehrqa_config.json``."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    class StepBar(ProgressCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            return None

    trainer.remove_callback(PrinterCallback)
    if trainer.pop_callback(ProgressCallback) is not None:
        trainer.add_callback(StepBar())
