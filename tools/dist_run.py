"""torchrun for ``dist_train.sh`` / ``dist_test.sh`` that ends the job with the ranks' own exit
code when they reported their error themselves.

Why: a worker that ends with the package's one ``error:`` line and exit code 2 (bad input) or
3 (a diverged run) has said all there is to say; plain torchrun adds its agent's log lines,
a ``ChildFailedError`` traceback with a failure summary, and exits 1. This script calls
torchrun's own ``parse_args`` and ``run`` (so it takes exactly ``python -m
torch.distributed.run``'s arguments). When the failed ranks exited with one of those codes,
apart from the ranks torchrun itself stopped with SIGTERM/SIGKILL on the way out, the job
exits with that code, quietly. Any other failure is reported as torchrun reports it, agent
lines included.

A script, not a package module: it imports torch only; ``python -m direct_pretrain...``
would import the package and mmdet first, seconds per job.
"""
import logging
import signal
import sys
from typing import List, Optional

from torch.distributed.elastic.multiprocessing.errors import ChildFailedError, record
from torch.distributed.run import parse_args, run

REPORTED_CODES = (2, 3)  # the tools' own: bad input, diverged run
STOPPED_BY_TORCHRUN = (-signal.SIGTERM, -signal.SIGKILL)
AGENT_LOGGER = 'torch.distributed.elastic.multiprocessing.api'  # "failed (exitcode: 3) ..." and the stops


class _HoldRecords(logging.Filter):
    """Keeps the agent's log records back until the job's outcome is known."""

    def __init__(self) -> None:
        super().__init__()
        self.records: List[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        self.records.append(record)
        return False


def reported_exit_code(error: ChildFailedError) -> Optional[int]:
    """The exit code the failed ranks reported themselves, or None for any other failure."""
    codes = {failure.exitcode for failure in error.failures.values()}
    reported = codes & set(REPORTED_CODES)
    if len(reported) == 1 and codes - reported <= set(STOPPED_BY_TORCHRUN):
        return reported.pop()
    return None


@record  # as torchrun's own main: another failure ends with its report and exit code 1
def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    agent_logger, held = logging.getLogger(AGENT_LOGGER), _HoldRecords()
    agent_logger.addFilter(held)
    code = None
    try:
        run(args)
    except ChildFailedError as error:
        code = reported_exit_code(error)
        if code is None:
            raise
    finally:
        agent_logger.removeFilter(held)
        if code is None:  # success, or a failure torchrun reports: its lines as they were
            for log_record in held.records:
                agent_logger.handle(log_record)
    return code or 0


if __name__ == '__main__':
    sys.exit(main())
