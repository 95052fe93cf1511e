"""Per-class AP a user can read: ``dp-test --classwise`` on a trained tiny stage writes box and mask
AP per class under the dataset's class names into ``test_metrics.json`` (strict JSON), and the
run report and the chain's results table show them as a table."""
import json
import math
import os.path as osp
import shutil

import pytest
from dp_test_utils import has_row
from forked_cli import ToolRun, run_tools

CLASSES = ('circle', 'rectangle', 'triangle', 'star')


@pytest.fixture(scope='module')
def tested(tmp_path_factory, tiny_trained_stage):
    """A copy of the trained stage, tested with --classwise (into its work dir) and without it."""
    tmp = tmp_path_factory.mktemp('per_class')
    work_dir = str(tmp / 'stage')
    shutil.copytree(tiny_trained_stage['work_dir'], work_dir)
    checkpoint = osp.join(work_dir, 'epoch_1.pth')
    plain_metrics = str(tmp / 'plain_metrics.json')
    runs = [ToolRun('test', [tiny_trained_stage['config'], checkpoint, '--work-dir', work_dir, '--classwise'],
                    str(tmp)),
            ToolRun('test', [tiny_trained_stage['config'], checkpoint, '--work-dir', str(tmp / 'plain'),
                             '--metrics-out', plain_metrics], str(tmp))]
    run_tools(runs)
    for run in runs:
        assert run.returncode == 0, run.stderr[-4000:]

    def strict(text):  # NaN / Infinity are not JSON
        raise ValueError(f'{text} in test_metrics.json')

    with open(osp.join(work_dir, 'test_metrics.json')) as f:
        metrics = json.load(f, parse_constant=strict)
    with open(plain_metrics) as f:
        plain = json.load(f)
    return dict(tmp=str(tmp), work_dir=work_dir, metrics=metrics, plain=plain)


def test_metrics_hold_box_and_mask_ap_per_class_under_the_class_names(tested):
    metrics = tested['metrics']
    for task in ('bbox', 'segm'):
        values = [metrics[f'coco/{task}_{name}_precision'] for name in CLASSES]
        assert all(v is None or 0.0 <= v <= 1.0 for v in values), values
        measured = [v for v in values if v is not None]
        assert measured, f'no {task} class has ground truth in the val set'
        # COCO's mAP is the mean of the per-class APs of the classes with ground truth (3-decimal rounding)
        assert sum(measured) / len(measured) == pytest.approx(metrics[f'coco/{task}_mAP'], abs=2e-3)
    # without --classwise: mmdet's keys only, the same values
    assert not any(k.endswith('_precision') for k in tested['plain'])
    assert {k: v for k, v in metrics.items() if not k.endswith('_precision')} == tested['plain']


def test_report_and_chain_table_show_the_per_class_ap(tested):
    from direct_pretrain.chain.chain import StageResult, format_results_table
    from direct_pretrain.report import write_report
    metrics = tested['metrics']
    report = write_report([tested['work_dir']], osp.join(tested['tmp'], 'report'), names=['finetune'])
    table = format_results_table([StageResult('test', 'ran', 1.0, 'test_metrics.json', metrics)])

    def cell(task, name):
        value = metrics[f'coco/{task}_{name}_precision']
        return '—' if value is None or math.isnan(value) else f'{value:.3f}'

    assert '### Per-class AP' in report.markdown
    assert has_row(report.markdown, 'stage', 'class', 'bbox AP', 'segm AP')
    assert has_row(table, 'stage', 'class', 'bbox AP', 'segm AP')
    for name in CLASSES:
        assert has_row(report.markdown, 'finetune', name, cell('bbox', name), cell('segm', name))
        assert has_row(table, 'test', name, cell('bbox', name), cell('segm', name))
