"""Read what mmengine logged about a training run, for reports and comparisons.

Why: a pre-training method is judged by curves and tables, and everything they need is
already on disk after a run - if one knows where mmengine put it:

- ``<work_dir>/<timestamp>/vis_data/scalars.json`` (LocalVisBackend): one JSON object per
  line; training records carry ``lr``, ``loss*``, ``time``, ``epoch``, ``iter``, and -
  with :class:`~direct_pretrain.engine.hooks.ResourceStatsHook` - ``peak_rss_mb``,
  ``elapsed_s`` and ``images_seen``; validation records carry ``coco/*`` metrics and
  ``step`` (the epoch). ``vis_data/<timestamp>.json`` holds the same lines and is read
  when ``scalars.json`` is missing.
- one ``<timestamp>`` folder per start of ``tools/train.py``: a resumed run adds a
  segment, read in time order; iterations a later segment logged again (redone after
  the crash) replace the earlier segment's records.
- ``<work_dir>/test_metrics.json`` (``tools/test.py --metrics-out``) or, without it, the
  ``<timestamp>/<timestamp>.json`` metrics dump of a ``tools/test.py`` run in that dir.
"""
import glob
import json
import logging
import os
import os.path as osp
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from ..errors import ReportInputError

__all__ = ['ReportInputError', 'Segment', 'StageLog', 'read_stage_log', 'stage_timeline']

logger = logging.getLogger(__name__)

_TIMESTAMP = re.compile(r'^\d{8}_\d{6}$')


@dataclass
class Segment:
    """One ``tools/train.py`` start in a work dir: the records of ``<timestamp>/vis_data``."""
    timestamp: str
    source: str
    train: List[dict] = field(default_factory=list)
    val: List[dict] = field(default_factory=list)

    @property
    def uses_hook(self) -> bool:
        """Whether ResourceStatsHook logged wall time and images (else they are estimated)."""
        return bool(self.train) and 'elapsed_s' in self.train[-1]


@dataclass
class StageLog:
    """Everything logged by one stage (one work dir).

    Attributes:
        name (str): Stage name shown in tables and plots.
        work_dir (str): The work dir read.
        segments (list[Segment]): Training segments in time order (several after resumes).
        test_metrics (dict): ``coco/*`` metrics of the test stage; empty if none found.
        test_metrics_source (str, optional): The file they came from.
        batch_size (int, optional): Images per iteration from the dumped config (only
            needed when ResourceStatsHook was not used).
        notes (list[str]): What is missing or estimated, with the fix.
    """
    name: str
    work_dir: str
    segments: List[Segment]
    test_metrics: Dict[str, float] = field(default_factory=dict)
    test_metrics_source: Optional[str] = None
    batch_size: Optional[int] = None
    notes: List[str] = field(default_factory=list)

    @property
    def train(self) -> List[dict]:
        """Training records of all segments; records a later segment redid are dropped."""
        records: List[dict] = []
        for index, segment in enumerate(self.segments):
            later = [s.train[0]['iter'] for s in self.segments[index + 1:] if s.train]
            cut = min(later) if later else None
            records += [r for r in segment.train if cut is None or r['iter'] < cut]
        return records

    @property
    def val(self) -> List[dict]:
        """Validation records (metrics per evaluation during training), in time order."""
        return [r for s in self.segments for r in s.val]


def _read_jsonl(path: str) -> List[dict]:
    records = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                # A run killed while writing leaves a truncated last line.
                logger.warning('%s:%d is not valid JSON (truncated by a killed run?); skipped', path, number)
    return records


def _is_train(record: dict) -> bool:
    return 'iter' in record and any(k == 'loss' or k.startswith('loss_') for k in record)


def _is_val(record: dict) -> bool:
    return any(k.startswith('coco/') or '/' in k for k in record) and not _is_train(record)


def _timestamp_dirs(work_dir: str) -> List[str]:
    return sorted(d for d in os.listdir(work_dir) if _TIMESTAMP.match(d) and osp.isdir(osp.join(work_dir, d)))


def _read_segment(work_dir: str, timestamp: str) -> Optional[Segment]:
    vis = osp.join(work_dir, timestamp, 'vis_data')
    for name in ('scalars.json', f'{timestamp}.json'):
        path = osp.join(vis, name)
        if osp.isfile(path):
            records = _read_jsonl(path)
            segment = Segment(timestamp, path, [r for r in records if _is_train(r)],
                              [r for r in records if _is_val(r)])
            return segment if segment.train or segment.val else None
    return None


def _find_test_metrics(work_dir: str, timestamps: Sequence[str]) -> tuple:
    path = osp.join(work_dir, 'test_metrics.json')
    if osp.isfile(path):
        with open(path) as f:
            return json.load(f), path
    for timestamp in reversed(timestamps):  # the newest tools/test.py run in this work dir
        dump = osp.join(work_dir, timestamp, f'{timestamp}.json')
        if osp.isfile(dump):
            try:
                with open(dump) as f:
                    metrics = json.load(f)
            except json.JSONDecodeError:
                continue
            if isinstance(metrics, dict) and any(k.startswith('coco/') for k in metrics):
                return metrics, dump
    return {}, None


def _dumped_config_batch_size(work_dir: str, timestamps: Sequence[str]) -> Optional[int]:
    """``train_dataloader.batch_size`` of the config mmengine dumped for this run, or None."""
    from mmengine.config import Config
    candidates = [osp.join(work_dir, t, 'vis_data', 'config.py') for t in reversed(timestamps)]
    candidates += sorted(glob.glob(osp.join(work_dir, '*.py')))
    for path in candidates:
        if not osp.isfile(path):
            continue
        try:
            loader = Config.fromfile(path, import_custom_modules=False).get('train_dataloader') or {}
        except Exception as error:  # a dump mmengine cannot parse back: try the next one
            logger.debug('cannot read %s: %s', path, error)
            continue
        if isinstance(loader.get('batch_size'), int):
            return loader['batch_size']
    return None


def _test_command_hint(work_dir: str) -> str:
    configs = sorted(glob.glob(osp.join(work_dir, '*.py')))
    config = configs[0] if configs else 'CONFIG'
    checkpoint = 'CHECKPOINT'
    last = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(last):
        with open(last) as f:
            checkpoint = f.read().strip() or checkpoint
    return (f'dp-test {config} {checkpoint} --work-dir {work_dir} --eval bbox segm '
            f'--metrics-out {osp.join(work_dir, "test_metrics.json")}')


def read_stage_log(work_dir: str, name: Optional[str] = None, expect_test: bool = False) -> StageLog:
    """Read the training segments and test metrics of one work dir.

    Args:
        work_dir (str): A ``tools/train.py`` work dir.
        name (str, optional): Stage name. Defaults to the work dir's base name.
        expect_test (bool): Add a note (with the command to run) when no test metrics are
            found. Defaults to False.

    Raises:
        ReportInputError: The dir does not exist or holds no logged training iteration.
    """
    name = name or osp.basename(osp.normpath(work_dir))
    if not osp.isdir(work_dir):
        raise ReportInputError(f'work dir {work_dir!r} does not exist; pass the --work-dir of a tools/train.py '
                               'run (default: work_dirs/<config name>).')
    timestamps = _timestamp_dirs(work_dir)
    segments = [s for s in (_read_segment(work_dir, t) for t in timestamps) if s is not None]
    train_segments = [s for s in segments if s.train]
    if not train_segments:
        started = [t for t in timestamps if osp.isfile(osp.join(work_dir, t, f'{t}.log'))]
        hint = (f' Runs started there ({", ".join(started)}) logged no training iteration: see '
                f'{osp.join(work_dir, started[-1], started[-1] + ".log")} for why they stopped.') if started else ''
        raise ReportInputError(f'no vis_data/scalars.json with training records under {work_dir}: was training '
                               f'started with this work dir (python tools/train.py CONFIG --work-dir {work_dir})?'
                               + hint)
    log = StageLog(name, work_dir, segments)
    log.test_metrics, log.test_metrics_source = _find_test_metrics(work_dir, timestamps)
    if expect_test and not log.test_metrics:
        log.notes.append(f'{name}: no test_metrics.json in {work_dir}: run `{_test_command_hint(work_dir)}`.')
    if not all(s.uses_hook for s in train_segments):
        log.batch_size = _dumped_config_batch_size(work_dir, timestamps)
        log.notes.append(f'{name}: ResourceStatsHook was not in custom_hooks, so wall time is estimated from the '
                         'logged iteration times and peak host memory is unknown; add '
                         "dict(type='ResourceStatsHook') to custom_hooks for measured values.")
        if log.batch_size is None:
            log.notes.append(f'{name}: no train_dataloader.batch_size found in the dumped config under {work_dir}; '
                             'images/s is not reported.')
    if len(train_segments) > 1:
        log.notes.append(f'{name}: resumed run, {len(train_segments)} segments '
                         f'({", ".join(s.timestamp for s in train_segments)}); wall time adds them up.')
    return log


def _segment_elapsed(segment: Segment, first_iter: int) -> List[float]:
    """Seconds since the segment started at each of its training records."""
    if segment.uses_hook:
        return [float(r.get('elapsed_s', 0.0)) for r in segment.train]
    # Fallback: sum of (window-mean iteration time x iterations since the last record).
    elapsed, total, previous = [], 0.0, first_iter
    for record in segment.train:
        total += float(record.get('time', 0.0)) * max(record['iter'] - previous, 0)
        previous = record['iter']
        elapsed.append(total)
    return elapsed


def stage_timeline(stages: Sequence[StageLog]) -> List[List[dict]]:
    """Put every stage's training and validation records on one time axis.

    Returns, per stage, its records (training and validation, in order) as copies with
    ``wall_s``: cumulative training wall time in seconds from the start of the first
    stage (validation time excluded when ResourceStatsHook ran), ``stage`` and
    ``kind`` ('train' or 'val'). Validation records sit at the last training record of
    their epoch.
    """
    timeline, offset = [], 0.0
    for stage in stages:
        kept = {id(r) for r in stage.train}
        rows: List[dict] = []
        previous_iter = 0
        for segment in stage.segments:
            if not segment.train:
                continue
            elapsed = _segment_elapsed(segment, previous_iter)
            for record, seconds in zip(segment.train, elapsed):
                if id(record) in kept:
                    rows.append(dict(record, wall_s=offset + seconds, stage=stage.name, kind='train'))
            previous_iter = segment.train[-1]['iter']
            epoch_end = {}
            for record, seconds in zip(segment.train, elapsed):
                epoch_end[record.get('epoch')] = (offset + seconds, record['iter'])
            for record in segment.val:
                wall, iteration = epoch_end.get(record.get('step'), (offset + elapsed[-1], previous_iter))
                rows.append(dict(record, wall_s=wall, iter=iteration, stage=stage.name, kind='val'))
            offset += elapsed[-1]
        rows.sort(key=lambda r: (r['wall_s'], r['kind'] == 'val'))
        timeline.append(rows)
    return timeline
