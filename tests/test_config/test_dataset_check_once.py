"""The dataset check runs once per job: not in the workers dist_launch.sh starts after its own
check (DP_INPUTS_CHECKED=1), not on ranks other than 0, and not again on --resume when the
annotation file and the config values it reads are unchanged (the work dir's cache, written
only after the work dir's lock is taken)."""
import json
import logging
import os
import shutil

import pytest
from dp_test_utils import write_tiny_stage_configs

from direct_pretrain.cli.train import build_config, parse_args
from direct_pretrain.config import input_checks
from direct_pretrain.config.input_checks import record_dataset_checks
from direct_pretrain.config.loading import load_config
from direct_pretrain.datasets.check_cache import CACHE_FILE
from direct_pretrain.errors import ConfigInputError
from direct_pretrain.runtime.work_dir import prepare_work_dir


@pytest.fixture()
def case(tmp_path, tiny_coco_root, monkeypatch):
    data = tmp_path / 'data'
    shutil.copytree(tiny_coco_root, data)
    pre, _ = write_tiny_stage_configs(str(tmp_path / 'cfg'), str(data))
    calls = []
    real = input_checks.validate_coco_dataset
    monkeypatch.setattr(input_checks, 'validate_coco_dataset', lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    for name in ('DP_INPUTS_CHECKED', 'RANK', 'SLURM_PROCID'):
        monkeypatch.delenv(name, raising=False)
    return dict(config=pre, ann=data / 'annotations' / 'instances_train.json', work_dir=tmp_path / 'wd', calls=calls)


def build(case, *extra):
    return build_config(parse_args([case['config'], '--work-dir', str(case['work_dir']), *extra]))


def run_starts(cfg):
    """What the train entry point does once it owns the work dir, before the Runner."""
    lock = prepare_work_dir(cfg.work_dir)
    try:
        record_dataset_checks(cfg)
    finally:
        lock.release()


def test_resume_skips_an_unchanged_check_and_a_change_checks_again(case, caplog):
    cfg = build(case)
    assert len(case['calls']) == 1 and not case['work_dir'].exists()  # checked; nothing written
    run_starts(cfg)
    cache = json.loads((case['work_dir'] / CACHE_FILE).read_text())['checks']
    assert len(cache) == 1 and cache[0]['ann_file'] == os.path.realpath(case['ann'])
    with caplog.at_level(logging.INFO, logger='direct_pretrain'):
        build(case, '--resume')
    assert len(case['calls']) == 1  # answered by the cache
    assert any('unchanged since the check of' in r.getMessage() and 'not checked again' in r.getMessage()
               for r in caplog.records)
    build(case, '--resume', '--cfg-options', 'dataset_check.min_usable_share=0.2')  # a setting the check reads
    assert len(case['calls']) == 2
    build(case, '--resume', '--check-images', 'full')
    assert len(case['calls']) == 3
    build(case, '--resume', '--cfg-options', 'train_cfg.max_epochs=3')  # not read by the check: still cached
    assert len(case['calls']) == 3


def test_an_edited_file_is_checked_again_even_with_its_old_size_and_time(case):
    run_starts(build(case))
    stat = case['ann'].stat()
    text = case['ann'].read_text()
    edited = text.replace('"iscrowd": 0', '"iscrowd": 1', 1)
    assert edited != text and len(edited) == len(text)
    case['ann'].write_text(edited)
    os.utime(case['ann'], ns=(stat.st_atime_ns, stat.st_mtime_ns))  # as rsync -a or a restored backup leaves it
    build(case, '--resume')
    assert len(case['calls']) == 2
    case['ann'].write_text(text + '\n')
    build(case, '--resume')
    assert len(case['calls']) == 3


def test_a_failing_check_and_check_only_write_nothing(case):
    build_config(parse_args([case['config'], '--work-dir', str(case['work_dir']), '--check-only']))
    assert not case['work_dir'].exists()
    data = json.loads(case['ann'].read_text())
    data['annotations'][1]['id'] = data['annotations'][0]['id']
    case['ann'].write_text(json.dumps(data))
    with pytest.raises(ConfigInputError, match='annotation id'):
        build(case)
    assert not case['work_dir'].exists()
    run_starts(load_config(case['config'], str(case['work_dir']), None, 'none', None))
    assert not (case['work_dir'] / CACHE_FILE).exists()  # a check that did not pass is not recorded


@pytest.mark.parametrize('env, launcher', [(dict(DP_INPUTS_CHECKED='1'), 'pytorch'), (dict(RANK='1'), 'pytorch'),
                                           (dict(SLURM_PROCID='3', SLURM_NTASKS='4'), 'slurm')])
def test_workers_and_other_ranks_do_not_check_again(case, monkeypatch, env, launcher):
    """A torchrun worker started after dist_launch.sh's check, or any rank but 0, does not read
    the annotation file again: a broken file passes there because the job checked it once."""
    data = json.loads(case['ann'].read_text())
    data['annotations'][1]['id'] = data['annotations'][0]['id']
    case['ann'].write_text(json.dumps(data))
    with pytest.raises(ConfigInputError, match='annotation id'):
        build(case)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    build(case, '--launcher', launcher)
    assert len(case['calls']) == 1  # only the rank-0 / launcher check above
