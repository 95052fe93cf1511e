"""Reading mmengine's logs for the report: resumed runs, fallbacks, broken and missing files.

Work dirs are written by hand in the layout mmengine uses, so each case is exact and fast.
"""
import json
import os

import pytest

from direct_pretrain.errors import ReportInputError
from direct_pretrain.report.run_logs import read_stage_log, stage_timeline
from direct_pretrain.report.run_report import summarize_stage


def train_record(it, epoch, loss, elapsed=None, images=None, time=0.5):
    record = dict(lr=0.01, loss=loss, loss_cls=loss / 2, time=time, epoch=epoch, iter=it, step=it)
    if elapsed is not None:
        record.update(elapsed_s=elapsed, images_seen=images, peak_rss_mb=1000.0 + it)
    return record


def write_segment(work_dir, timestamp, records, name='scalars.json', extra_lines=''):
    vis = work_dir / timestamp / 'vis_data'
    vis.mkdir(parents=True)
    (vis / name).write_text(''.join(json.dumps(r) + '\n' for r in records) + extra_lines)
    (work_dir / timestamp / f'{timestamp}.log').write_text('log\n')
    return vis


def test_resumed_segments_are_concatenated_and_redone_iterations_replaced(tmp_path):
    # segment 1 logged iterations 1-6 (epoch 2 half done), crashed; resumed from epoch_1
    # (iteration 4), segment 2 logged 5-8 again from elapsed 0
    first = [train_record(i, 1 if i <= 4 else 2, 10.0 - i, elapsed=float(i), images=2 * i) for i in range(1, 7)]
    second = [train_record(i, 2, 5.0 - i / 10, elapsed=float(i - 4), images=2 * (i - 4)) for i in range(5, 9)]
    write_segment(tmp_path, '20250101_000000', first)
    write_segment(tmp_path, '20250101_010000', second, extra_lines='{"lr": 0.01, "loss": ')  # truncated by a kill
    log = read_stage_log(str(tmp_path), 'stage')
    assert [r['iter'] for r in log.train] == list(range(1, 9))
    assert [r['loss'] for r in log.train[4:]] == [r['loss'] for r in second]
    summary = summarize_stage(log)
    assert summary.iterations == 8 and summary.epochs == 2
    assert summary.wall_s == 6.0 + 4.0  # all time spent, redone iterations included
    assert summary.images == 12 + 8 and summary.images_per_s == pytest.approx(2.0)
    assert summary.final_losses['loss'] == second[-1]['loss'] and summary.peak_rss_mb == 1008.0
    assert any('resumed run, 2 segments' in n for n in log.notes)
    (rows, ) = stage_timeline([log])
    assert [r['wall_s'] for r in rows] == [1.0, 2.0, 3.0, 4.0, 7.0, 8.0, 9.0, 10.0]


def test_timestamp_json_is_read_when_scalars_json_is_missing(tmp_path):
    write_segment(tmp_path, '20250101_000000', [train_record(1, 1, 2.0, 1.0, 2), train_record(2, 1, 1.5, 2.0, 4)],
                  name='20250101_000000.json')
    assert summarize_stage(read_stage_log(str(tmp_path))).final_losses['loss'] == 1.5


def test_without_the_hook_wall_time_is_estimated_from_iteration_times(tmp_path):
    vis = write_segment(tmp_path, '20250101_000000', [train_record(i * 5, 1, 1.0, time=0.2) for i in (1, 2, 3)])
    (vis / 'config.py').write_text("model = dict(type='MaskRCNN')\ntrain_dataloader = dict(\n    batch_size=4,\n"
                                   "    num_workers=2)\n")
    log = read_stage_log(str(tmp_path))
    summary = summarize_stage(log)
    assert not summary.wall_time_measured and summary.wall_s == pytest.approx(15 * 0.2)
    assert summary.images == 15 * 4 and summary.peak_rss_mb is None
    assert any("add dict(type='ResourceStatsHook')" in n for n in log.notes)


def test_validation_and_test_metrics(tmp_path):
    records = [train_record(i, 1 + (i > 2), 1.0, float(i), 2 * i) for i in (1, 2, 3, 4)]
    records.insert(2, {'coco/bbox_mAP': 0.1, 'coco/segm_mAP': 0.05, 'time': 0.1, 'step': 1})
    write_segment(tmp_path, '20250101_000000', records)
    # a tools/test.py run in the same work dir, without --metrics-out
    test_dir = tmp_path / '20250101_020000'
    test_dir.mkdir()
    (test_dir / '20250101_020000.json').write_text(json.dumps({'coco/bbox_mAP': 0.3, 'coco/segm_mAP': 0.2}))
    log = read_stage_log(str(tmp_path), expect_test=True)
    assert log.test_metrics == {'coco/bbox_mAP': 0.3, 'coco/segm_mAP': 0.2} and log.notes == []
    (rows, ) = stage_timeline([log])
    (val, ) = [r for r in rows if r['kind'] == 'val']
    assert val['iter'] == 2 and val['wall_s'] == 2.0  # placed at the end of epoch 1
    # test_metrics.json wins over the dump
    (tmp_path / 'test_metrics.json').write_text(json.dumps({'coco/bbox_mAP': 0.4}))
    assert read_stage_log(str(tmp_path)).test_metrics == {'coco/bbox_mAP': 0.4}


def test_a_run_that_crashed_before_logging_points_at_its_log(tmp_path):
    (tmp_path / '20250101_000000' / 'vis_data').mkdir(parents=True)
    (tmp_path / '20250101_000000' / '20250101_000000.log').write_text('Traceback ...\n')
    with pytest.raises(ReportInputError) as info:
        read_stage_log(str(tmp_path))
    text = str(info.value)
    assert 'was training started with this work dir' in text
    assert os.path.join(str(tmp_path), '20250101_000000', '20250101_000000.log') in text
