"""The list of bad images a training run skipped, shared by all dataloader workers.

Why: a loader that skips a bad file runs in a dataloader worker process; the count of
skips is shared (:class:`~direct_pretrain.datasets.transforms.SkipCounter`), but the run
must also be able to *name* the files - to stop above a configured number with the list,
and to put them in the run report. Each skip appends one JSON line to
``<work_dir>/bad_images.jsonl`` (``O_APPEND``: lines from concurrent workers do not
interleave), which the main process and the report read back.
"""
import json
import logging
import os
import time
from typing import Dict, Iterable, Optional, Tuple

__all__ = ['BAD_IMAGE_LOG', 'TooManyBadImagesError', 'record_bad_image', 'read_bad_images', 'read_bad_images_since',
           'format_bad_images']

logger = logging.getLogger(__name__)

#: File name of the log in the work dir.
BAD_IMAGE_LOG = 'bad_images.jsonl'


class TooManyBadImagesError(RuntimeError):
    """More distinct bad images than the run tolerates (``dataset_check.max_bad_images``).

    Attributes:
        bad (dict[str, str]): path -> reason of every bad image found so far.
        limit (int): The tolerated number.
    """

    def __init__(self, bad: Dict[str, str], limit: int, when: str) -> None:
        self.bad = dict(bad)
        self.limit = limit
        super().__init__(
            f'{len(bad)} bad image file(s) {when}, more than the {limit} this run tolerates '
            f'(dataset_check.max_bad_images): {format_bad_images(bad)}. Fix or replace the files, remove them from '
            'the annotation file, or raise the limit with --cfg-options dataset_check.max_bad_images=N.')


def format_bad_images(bad: Dict[str, str], show: int = 5) -> str:
    """``path (reason); ...`` for the first ``show`` entries, with the count of the rest."""
    items = list(bad.items())
    text = '; '.join(f'{path} ({reason})' for path, reason in items[:show])
    return text + (f'; ... and {len(items) - show} more' if len(items) > show else '')


def record_bad_image(log_file: Optional[str], path: str, reason: str) -> None:
    """Append ``path`` and ``reason`` to ``log_file`` (no-op when it is None)."""
    if not log_file:
        return
    line = json.dumps(dict(path=path, reason=reason, pid=os.getpid(), time=round(time.time(), 3))) + '\n'
    try:
        fd = os.open(log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode('utf-8'))
        finally:
            os.close(fd)
    except OSError as error:  # the skip itself must not fail the worker
        logger.warning('could not record bad image %s in %s: %s', path, log_file, error)


def _parse(lines: Iterable[str]) -> Dict[str, str]:
    bad: Dict[str, str] = {}
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a line cut short by a kill
        if isinstance(entry, dict) and entry.get('path'):
            bad.setdefault(str(entry['path']), str(entry.get('reason', '')))
    return bad


def read_bad_images(log_file: str) -> Dict[str, str]:
    """path -> reason of the distinct files in ``log_file`` (first reason kept); {} if absent."""
    try:
        with open(log_file, encoding='utf-8') as f:
            return _parse(f)
    except FileNotFoundError:
        return {}


def read_bad_images_since(log_file: str, offset: int) -> Tuple[Dict[str, str], int]:
    """Entries appended after byte ``offset`` and the new offset (complete lines only)."""
    try:
        with open(log_file, 'rb') as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return {}, 0
    end = data.rfind(b'\n') + 1
    return _parse(data[:end].decode('utf-8', 'replace').splitlines()), offset + end
