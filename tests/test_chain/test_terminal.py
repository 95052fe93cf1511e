"""The chain's terminal: a progress bar per stage fed by mmengine's log lines, the full
output in the stage's work dir, and a failing stage's tail on the error."""
import glob
import io
import json
import os.path as osp
import sys

import pytest

from dp_test_utils import python_env
from direct_pretrain.chain.terminal import STAGE_LOG, StageFailed, parse_progress_line, run_stage


def text_log(work_dir: str) -> str:
    found = sorted(glob.glob(osp.join(work_dir, '*', '*.log')))
    assert found, work_dir
    with open(found[-1]) as f:
        return f.read()


def test_progress_lines_of_a_real_log_match_mmengine_json_scalars(tiny_trained_stage):
    """Every train line of mmengine's text log parses to the iteration and loss that its
    JSON backend (vis_data/scalars.json) recorded for the same step."""
    work_dir = tiny_trained_stage['work_dir']
    parsed = [p for p in map(parse_progress_line, text_log(work_dir).splitlines()) if p and p.mode == 'train']
    scalars = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))[-1]
    with open(scalars) as f:
        records = [json.loads(line) for line in f if '"loss"' in line]
    assert [(p.epoch, p.it, p.total) for p in parsed] == [(1, 1, 2), (1, 2, 2)]
    assert [p.loss for p in parsed] == pytest.approx([r['loss'] for r in records], abs=1e-4)
    assert all(p.eta for p in parsed)


def test_terminal_shows_one_bar_and_the_log_keeps_everything(tiny_trained_stage):
    terminal = tiny_trained_stage['terminal']
    lines = [line for line in terminal.splitlines() if line.strip()]
    assert len(lines) == 1, terminal  # one bar, nothing of the child's ~700 lines
    assert 'pretrain' in lines[0] and '2/2' in lines[0] and 'loss' in lines[0] and 'done' in lines[0]
    with open(osp.join(tiny_trained_stage['work_dir'], STAGE_LOG)) as f:
        log = f.read()
    assert log.count('\n') > 100 and 'Epoch(train) [1][2/2]' in log.replace('  ', ' ')
    assert 'direct_pretrain.cli.train' in log.splitlines()[1]  # the command heads the stage's section


def test_parse_iteration_based_and_test_lines():
    line = ('11/30 10:00:01 - mmengine - INFO - Iter(train) [ 250/90000]  base_lr: 2.0e-02 lr: 2.0e-02  '
            'eta: 1 day, 2:03:04  time: 0.51  data_time: 0.01  memory: 0  grad_norm: 3.1  loss: 1.2500  '
            'loss_rpn_cls: 0.6000')
    p = parse_progress_line(line)
    assert (p.mode, p.epoch, p.it, p.total, p.loss, p.eta) == ('train', None, 250, 90000, 1.25, '1 day, 2:03:04')
    test = parse_progress_line('11/30 10:00:02 - mmengine - INFO - Epoch(test) [10/40]    eta: 0:00:07  time: 0.7')
    assert (test.mode, test.epoch, test.it, test.total, test.loss) == ('test', None, 10, 40, None)
    assert parse_progress_line('coco/bbox_mAP: 0.1000 loss: 3') is None


def test_failed_stage_raises_with_the_tail_of_its_log(tmp_path):
    out = io.StringIO()
    code = 'import sys\nfor i in range(40): print("line", i)\nsys.exit("boom: bad thing")'
    with pytest.raises(StageFailed) as info:
        run_stage('finetune', [sys.executable, '-c', code], str(tmp_path / 'wd'), env=python_env(), out=out)
    message = str(info.value)
    assert 'finetune failed with exit code 1' in message and osp.join(str(tmp_path / 'wd'), STAGE_LOG) in message
    assert 'boom: bad thing' in message and 'line 39' in message and 'line 5\n' not in message  # the tail only
    assert 'FAILED' in out.getvalue()
    with open(tmp_path / 'wd' / STAGE_LOG) as f:
        assert 'line 0\n' in f.read()


def test_verbose_shows_the_output_and_still_logs_it(tmp_path):
    out = io.StringIO()
    run_stage('test', [sys.executable, '-c', 'print("hello from the stage")'], str(tmp_path), env=python_env(),
              verbose=True, out=out)
    assert out.getvalue() == 'hello from the stage\n'
    run_stage('test', [sys.executable, '-c', 'print("second run")'], str(tmp_path), env=python_env(), out=io.StringIO())
    with open(tmp_path / STAGE_LOG) as f:
        log = f.read()
    assert 'hello from the stage' in log and 'second run' in log  # appended: a resumed stage keeps its history
