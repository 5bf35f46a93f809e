"""The training engine and the run directory it writes."""

from interp.training.grokfast import GrokfastConfig, GrokfastFilter
from interp.training.schedule import checkpoint_steps, eval_steps
from interp.training.store import (
    CorruptCheckpointError,
    Run,
    RunError,
    RunStore,
    open_run,
)
from interp.training.trainer import (
    ClassificationTask,
    Task,
    TrainConfig,
    TrainResult,
    configure_threads,
    resolve_device,
    summarize,
    train,
)

__all__ = [
    "ClassificationTask",
    "CorruptCheckpointError",
    "GrokfastConfig",
    "GrokfastFilter",
    "Run",
    "RunError",
    "RunStore",
    "Task",
    "TrainConfig",
    "TrainResult",
    "checkpoint_steps",
    "configure_threads",
    "eval_steps",
    "open_run",
    "resolve_device",
    "summarize",
    "train",
]
