"""The chain's terminal: one progress bar per stage, each stage's full output in its work dir.

Why: a stage's child process prints ~700 lines (the config dump, one ``paramwise_options``
line per parameter, hook tables, COCO tables); three stages drown the chain's own lines and
its results table. Here each child's stdout and stderr go to ``<work_dir>/stage.log`` (appended,
so a resumed stage keeps its history), and the terminal shows a bar per stage fed from
mmengine's own progress lines - ``Epoch(train) [e][ i/N]`` / ``Iter(train) [ i/N]`` /
``Epoch(test) [ i/N]`` with their ``loss`` and ``eta`` fields. With ``verbose`` the child's
output is shown as it comes, as before, and still written to the log. A failing stage shows
the end of its log and the log's path.
"""
import os
import re
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass
from typing import IO, Callable, Dict, Optional, Sequence

__all__ = ['LogProgress', 'parse_progress_line', 'StageFailed', 'run_stage', 'STAGE_LOG']

STAGE_LOG = 'stage.log'
TAIL_LINES = 25

# mmengine's LogProcessor: "Epoch(train)  [2][ 10/160]  ...", "Iter(train) [ 10/1000] ...",
# "Epoch(test) [10/40] ..." (val/test have no epoch field in iteration lines).
_PROGRESS = re.compile(r'\b(Epoch|Iter)\((train|val|test)\)\s*(?:\[\s*(\d+)\])?\s*\[\s*(\d+)\s*/\s*(\d+)\s*\]')
_LOSS = re.compile(r'(?<![\w/])loss:\s*([-+0-9.eE]+|nan|inf)')
_ETA = re.compile(r'\beta:\s*((?:\d+ days?, )?\d+:\d{2}:\d{2})')


@dataclass
class LogProgress:
    """One mmengine progress line: mode, epoch (None for iteration-based and val/test lines),
    iteration within the epoch (or overall for ``Iter``) and its total, loss and ETA text."""
    mode: str
    epoch: Optional[int]
    it: int
    total: int
    loss: Optional[float] = None
    eta: Optional[str] = None


def parse_progress_line(line: str) -> Optional[LogProgress]:
    """The progress in one line of mmengine's text log; None for any other line."""
    match = _PROGRESS.search(line)
    if not match:
        return None
    _, mode, epoch, it, total = match.groups()
    loss = _LOSS.search(line[match.end():])
    eta = _ETA.search(line[match.end():])
    return LogProgress(mode=mode, epoch=int(epoch) if epoch else None, it=int(it), total=int(total),
                       loss=float(loss.group(1)) if loss else None, eta=eta.group(1) if eta else None)


class StageFailed(RuntimeError):
    """A stage's child process exited non-zero; the message has the end of its log."""

    def __init__(self, name: str, returncode: int, log_file: str, tail: Sequence[str]) -> None:
        self.name, self.returncode, self.log_file = name, returncode, log_file
        body = ''.join(tail).rstrip()
        super().__init__(f'{name} failed with exit code {returncode}; full log: {log_file}'
                         + (f'\n--- last lines of {log_file} ---\n{body}' if body else ''))


class _Bar:
    """A rich progress bar for one stage: completed iterations over the stage's total."""

    def __init__(self, name: str, total_epochs: Optional[int], file: IO) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
        self.total_epochs = total_epochs
        self.console = Console(file=file, highlight=False, soft_wrap=False)
        self.progress = Progress(
            TextColumn('{task.description:<9}'), BarColumn(bar_width=30), MofNCompleteColumn(),
            TextColumn('{task.fields[loss]}'), TextColumn('{task.fields[eta]}'), TimeElapsedColumn(),
            console=self.console, transient=False, refresh_per_second=4)
        self.task = self.progress.add_task(name, total=None, loss='', eta='')
        self.mode: Optional[str] = None

    def __enter__(self) -> '_Bar':
        self.progress.start()
        return self

    def update(self, p: LogProgress) -> None:
        if p.mode == 'val':
            return  # validation inside a training stage: the training bar stays
        if p.epoch is not None and p.mode == 'train' and self.total_epochs:
            completed, total = (p.epoch - 1) * p.total + p.it, self.total_epochs * p.total
        else:
            completed, total = p.it, p.total
        fields = dict(eta=f'eta {p.eta}' if p.eta else '')
        if p.loss is not None:
            fields['loss'] = f'loss {p.loss:.3f}'
        self.progress.update(self.task, completed=completed, total=total, **fields)

    def finish(self, ok: bool) -> None:
        task = self.progress.tasks[0]
        if ok and task.total:
            self.progress.update(self.task, completed=task.total, eta='done')
        elif ok:
            self.progress.update(self.task, total=1, completed=1, eta='done')
        else:
            self.progress.update(self.task, eta='FAILED')
        self.progress.stop()

    def __exit__(self, *exc) -> None:
        if self.progress.live.is_started:
            self.progress.stop()


def run_stage(name: str, cmd: Sequence[str], work_dir: str, env: Optional[Dict[str, str]] = None,
              total_epochs: Optional[int] = None, verbose: bool = False, out: Optional[IO] = None,
              preexec_fn: Optional[Callable[[], None]] = None) -> float:
    """Run one stage's command; its output goes to ``<work_dir>/stage.log``, the terminal gets a
    progress bar (or, with ``verbose``, the output itself). Returns the wall time in seconds.

    Args:
        name (str): Stage name shown on the bar.
        cmd (Sequence[str]): The child command.
        work_dir (str): The stage's work dir; created for the log if missing.
        env (dict, optional): Child environment. Defaults to this process's.
        total_epochs (int, optional): Epochs of an epoch-based training stage, so the bar spans
            the whole stage (mmengine's lines count iterations within an epoch). Defaults to
            None: the bar follows the current epoch.
        verbose (bool): Show the child's output instead of a bar. Defaults to False.
        out (IO, optional): Where the bar or the output goes. Defaults to ``sys.stdout``.
        preexec_fn (Callable, optional): Run in the child before it starts (``subprocess``).

    Raises:
        StageFailed: The child exited non-zero; without ``verbose`` the message ends with the
            tail of its log (with ``verbose`` the output was shown already).
    """
    out = out or sys.stdout
    os.makedirs(work_dir, exist_ok=True)
    log_file = os.path.join(work_dir, STAGE_LOG)
    child_env = dict(os.environ if env is None else env, PYTHONUNBUFFERED='1')
    tail: deque = deque(maxlen=TAIL_LINES)
    start = time.time()
    with open(log_file, 'a', encoding='utf-8') as log:
        log.write(f'\n### {time.strftime("%Y-%m-%d %H:%M:%S")} {name}: {" ".join(cmd)}\n')
        log.flush()
        bar = None if verbose else _Bar(name, total_epochs, out)
        try:
            if bar:
                bar.__enter__()
            proc = subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=child_env,
                                    text=True, bufsize=1, errors='replace', preexec_fn=preexec_fn)
            assert proc.stdout is not None
            for line in proc.stdout:
                log.write(line)
                tail.append(line)
                if verbose:
                    out.write(line)
                    out.flush()
                else:
                    progress = parse_progress_line(line)
                    if progress:
                        bar.update(progress)
            returncode = proc.wait()
            if bar:
                bar.finish(returncode == 0)
        finally:
            if bar:
                bar.__exit__(None, None, None)
    if returncode != 0:
        raise StageFailed(name, returncode, log_file, [] if verbose else list(tail))
    return time.time() - start

