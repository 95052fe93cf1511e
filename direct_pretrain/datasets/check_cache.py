"""The dataset checks a work dir's runs have passed, so that ``--resume`` does not repeat them.

Why: the training-set check reads the whole annotation file and stats or reads every image
file; a resumed run (a kill, a preempted node, a chain stage restarted) has the same file and
the same config and would find the same. The key of a passed check is the annotation file
(real path, size, modification time and a SHA-1 of its bytes) and a hash of every config
value the check reads; when both match, the check is skipped and its summary is logged from
here. Any change - the file edited, copied over, touched, or ``classes`` / ``filter_cfg`` /
the pipeline's mask loading / a ``dataset_check`` setting / the image folder's listing -
misses, and the check runs again. The image files themselves are not re-read on a hit; the
training loaders still skip (and count) any file that has gone bad since.

Where: ``<work_dir>/dataset_check.json``. The work dir is the run's own folder - nothing
outside a run's files is written, and an annotation folder may be read-only or shared by
other users' jobs - and it is where ``--resume`` runs again; a new work dir checks once. The
file is written only after the work dir's lock is taken (:meth:`DatasetCheckCache.save` is
called by the train entry point then), never by ``--check-only`` or a failing check.
"""
import hashlib
import json
import logging
import os
import os.path as osp
import time
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Tuple

from ..runtime.atomic_save import atomic_write_bytes

__all__ = ['CACHE_FILE', 'CHECK_VERSION', 'DatasetCheckKey', 'DatasetCheckCache', 'CachedDatasetCheck',
           'dataset_check_key', 'passed_checks', 'remember_passed']

logger = logging.getLogger(__name__)

CACHE_FILE = 'dataset_check.json'
#: Part of every key: raise it when the check's rules change, so older results do not count.
CHECK_VERSION = 2

# (real path, size, mtime_ns, inode, ctime_ns) -> SHA-1 of the content, computed once per process (any
# write, and any utime that restores an old mtime, moves the ctime on)
_DIGESTS: Dict[Tuple[str, int, int, int, int], str] = {}
# checks passed in this process, by key: what the train entry point records after taking the lock
_PASSED: Dict['DatasetCheckKey', dict] = {}


@dataclass(frozen=True)
class DatasetCheckKey:
    """What a check result holds for: the annotation file as it is now, and the config."""
    ann_file: str  # real path
    size: int
    mtime_ns: int
    inode: int
    config: str  # SHA-1 of the config values the check reads

    def digest(self) -> str:
        """SHA-1 of the file's bytes (read once per process; ~0.4 s for COCO's 450 MB)."""
        stat = os.stat(self.ann_file)
        stamp = (self.ann_file, stat.st_size, stat.st_mtime_ns, stat.st_ino, stat.st_ctime_ns)
        if stamp not in _DIGESTS:
            sha = hashlib.sha1(usedforsecurity=False)
            with open(self.ann_file, 'rb') as f:
                for block in iter(lambda: f.read(16 << 20), b''):
                    sha.update(block)
            _DIGESTS[stamp] = sha.hexdigest()
        return _DIGESTS[stamp]


def dataset_check_key(ann_file: str, config: dict) -> DatasetCheckKey:
    """The key of checking ``ann_file`` with the config values ``config`` (JSON-serialisable)."""
    real = osp.realpath(ann_file)
    stat = os.stat(real)
    text = json.dumps(dict(config, check_version=CHECK_VERSION), sort_keys=True, default=repr)
    return DatasetCheckKey(real, stat.st_size, stat.st_mtime_ns, stat.st_ino, hashlib.sha1(text.encode()).hexdigest())


@dataclass
class CachedDatasetCheck:
    """A training set's check answered from the cache: what callers of the check read of a report."""
    ann_file: str
    trained_images: Optional[int]
    summary: Optional[str]


def passed_checks() -> Dict[DatasetCheckKey, dict]:
    """The checks this process ran and passed (key -> summary entry), for recording."""
    return _PASSED


class DatasetCheckCache:
    """The cache file of one work dir (read when it exists; written only by :meth:`save`)."""

    def __init__(self, work_dir: Optional[str]) -> None:
        self.path = osp.join(work_dir, CACHE_FILE) if work_dir else None
        self.entries: List[dict] = []
        if self.path and osp.isfile(self.path):
            try:
                with open(self.path, encoding='utf-8') as f:
                    content = json.load(f)
                self.entries = [e for e in content.get('checks', []) if isinstance(e, dict)]
            except (OSError, ValueError, AttributeError) as error:
                logger.warning('dataset check cache %s is unreadable (%s); checking again', self.path, error)

    def lookup(self, key: DatasetCheckKey) -> Optional[dict]:
        """The entry of a passed check of exactly this file and config, or None. The file's
        content is hashed only when path, size, time and config already match."""
        for entry in self.entries:
            if all(entry.get(name) == value for name, value in asdict(key).items()) and \
                    entry.get('sha1') == key.digest():
                return entry
        return None

    def add(self, key: DatasetCheckKey, summary: Optional[str] = None, warnings: Tuple[str, ...] = (),
            trained_images: Optional[int] = None) -> dict:
        """Record a passed check (in memory; :meth:`save` writes)."""
        entry = dict(asdict(key), sha1=key.digest(), checked_at=time.strftime('%Y-%m-%d %H:%M:%S'),
                     summary=summary, warnings=list(warnings), trained_images=trained_images)
        fields = list(asdict(key))
        self.entries = [e for e in self.entries if any(e.get(f) != entry[f] for f in fields)] + [entry]
        return entry

    def save(self) -> None:
        """Write the cache file (atomically). Call only while holding the work dir's lock."""
        if self.path:
            data = json.dumps(dict(checks=self.entries), indent=1, ensure_ascii=False)
            atomic_write_bytes(data.encode('utf-8'), self.path)


def remember_passed(key: DatasetCheckKey, summary: str, warnings: Tuple[str, ...], trained_images: int) -> None:
    """Keep a check this process passed, for the train entry point to record after the lock."""
    _PASSED[key] = dict(summary=summary, warnings=list(warnings), trained_images=trained_images)
