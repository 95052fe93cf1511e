"""The package's user-facing error types, in one leaf module that imports nothing of the package.

Why one place: the tools turn these into one ``error:`` line (exit code 2, or 3 for a diverged
run), so every room that raises them - config checks, checkpoint checks, dataset checks,
inference, reports, the training guards - and every tool that catches them import this module
and nothing else of each other's.
"""
import pickle
from typing import Dict, List, Optional

__all__ = ['ConfigInputError', 'InferenceInputError', 'WorkDirError', 'CheckpointCheckError', 'CHECKPOINT_PROBLEMS',
           'UnsafeCheckpointError', 'DatasetValidationError', 'ReportInputError', 'TrainingDivergedError',
           'NonFiniteLossError', 'LossSpikeError', 'NonFiniteWeightsError']


class ConfigInputError(ValueError):
    """A config or command-line value points at something that does not exist or is invalid."""


class InferenceInputError(ConfigInputError):
    """A config, checkpoint or image folder given to inference is missing or unusable."""


class WorkDirError(ConfigInputError):
    """The work dir cannot hold a run: it is a file, cannot be written, or its ``.lock`` is not
    a regular file (a symbolic link, a folder, a fifo) that the run would write through."""


#: The values :attr:`CheckpointCheckError.problem` takes.
CHECKPOINT_PROBLEMS = ('missing', 'not_a_file', 'empty', 'unreadable', 'truncated', 'not_a_checkpoint', 'unsafe',
                       'does_not_fit', 'non_finite')


class CheckpointCheckError(ValueError):
    """A checkpoint file is missing, empty, truncated, not a checkpoint or unsafe to load, or its
    weights do not fill the config's model (``does_not_fit``) or are NaN/inf (``non_finite``).

    Attributes:
        path (str): The file.
        problem (str): One of :data:`CHECKPOINT_PROBLEMS`.
        what (str): What the file was given as (``load_from``, ``--resume``, ``checkpoint``...).
    """

    def __init__(self, path: str, problem: str, detail: str, what: str = 'checkpoint') -> None:
        self.path = path
        self.problem = problem
        self.what = what
        super().__init__(f'{what} {path!r} {detail}')


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds a type outside the allow-list; it was not loaded."""


class DatasetValidationError(ValueError):
    """The dataset cannot be trained on as configured."""


class ReportInputError(ValueError):
    """A work dir handed to the report is missing, empty, or lacks the logs the report needs."""


class TrainingDivergedError(RuntimeError):
    """Training stopped because it diverged; ``str(error)`` is a one-line report.

    Attributes:
        iteration (int): 1-based iteration at which it was detected.
        last_checkpoint (str | None): Newest complete checkpoint in the work dir.
    """

    def __init__(self, message: str, iteration: int, last_checkpoint: Optional[str]) -> None:
        super().__init__(message)
        self.iteration = iteration
        self.last_checkpoint = last_checkpoint


class NonFiniteLossError(TrainingDivergedError):
    """The loss was NaN/inf; the weights were not updated with it.

    Attributes:
        terms (dict[str, float]): The non-finite loss terms of this rank.
        ranks (list[int]): Ranks whose loss was non-finite.
    """

    def __init__(self, message: str, iteration: int, last_checkpoint: Optional[str], terms: Dict[str, float],
                 ranks: List[int]) -> None:
        super().__init__(message, iteration, last_checkpoint)
        self.terms = terms
        self.ranks = ranks


class LossSpikeError(TrainingDivergedError):
    """The loss rose far above its running level (still finite); the weights were not updated with it.

    Attributes:
        loss (float): This rank's loss at that iteration.
        level (float | None): Its running level (median of the recent losses) on this rank.
        ranks (list[int]): Ranks whose loss spiked.
    """

    def __init__(self, message: str, iteration: int, last_checkpoint: Optional[str], loss: float,
                 level: Optional[float], ranks: List[int]) -> None:
        super().__init__(message, iteration, last_checkpoint)
        self.loss = loss
        self.level = level
        self.ranks = ranks


class NonFiniteWeightsError(TrainingDivergedError):
    """A checkpoint about to be written holds NaN/inf weights; it was not written."""


class GpuCheckInputError(ValueError):
    """A bad option or a machine that cannot run the requested check; the message says what to do."""


class StageCostError(ValueError):
    """A config whose train resolution or detector cannot be costed; the message says why."""


class BrowseError(ValueError):
    """The config's train pipeline cannot be browsed; the message names what to change."""
