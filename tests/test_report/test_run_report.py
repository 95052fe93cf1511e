"""The run report from real runs: the chain (real tools/train.py and tools/test.py child
processes on the tiny toy set, TensorBoard on) writes it, tools/report.py rebuilds it,
and every number in its tables is checked against the logs the runs wrote."""
import glob
import json
import os.path as osp
import re

import numpy as np
import pytest
from dp_test_utils import TOOLS, has_row
from forked_cli import run_tool


def load_tool(name: str):
    """A checkout tool (an experiment script, not package code) as a module."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(name, osp.join(TOOLS, f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_scalars(work_dir: str) -> list:
    (path, ) = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.fixture(scope='module')
def chain(toy_chain):
    """pretrain (1 epoch) -> finetune (1 epoch) -> test through dp-chain: the shared toy chain
    (conftest, read-only)."""
    return toy_chain


def test_chain_prints_stage_progress_with_an_eta(chain):
    out = chain['output']
    assert '[1/3] pretrain: starting (chain elapsed' in out and 'ETA unknown until a stage has run' in out
    # after the pretrain ran, the finetune starts with a real estimate
    assert re.search(r'\[2/3\] finetune: starting \(chain elapsed [\d.hms]+, ETA [\d.hms]+ \+ test\)', out), out[-3000:]
    assert '[3/3] test: ran in' in out
    assert f'run report: {osp.join(chain["report_dir"], "report.md")}' in out


def test_report_tables_match_the_logs(chain):
    with open(osp.join(chain['report_dir'], 'report.json')) as f:
        report = json.load(f)
    with open(osp.join(chain['report_dir'], 'report.md')) as f:
        markdown = f.read()
    assert [s['name'] for s in report['stages']] == ['pretrain', 'finetune']
    for stage, work_dir in zip(report['stages'], (chain['pre_dir'], chain['ft_dir'])):
        records = read_scalars(work_dir)
        last = records[-1]
        assert stage['iterations'] == last['iter'] == 4  # 8 images, batch 2, 1 epoch
        assert stage['epochs'] == last['epoch'] == 1
        assert stage['final_losses']['loss'] == last['loss']
        assert stage['final_losses']['loss_mask'] == last['loss_mask']
        # ResourceStatsHook: measured wall time, the images seen, peak RSS of the process
        elapsed = [r['elapsed_s'] for r in records]
        assert elapsed == sorted(elapsed) and stage['wall_time_measured']
        assert stage['wall_s'] == pytest.approx(last['elapsed_s'])
        assert stage['images'] == last['images_seen'] == 8
        assert stage['images_per_s'] == pytest.approx(8 / last['elapsed_s'])
        assert stage['peak_rss_mb'] == max(r['peak_rss_mb'] for r in records) > 100
        assert has_row(markdown, stage['name'], '1', '4')
        assert has_row(markdown, stage['name'], f'{last["loss"]:.4f}')
    with open(osp.join(chain['ft_dir'], 'test_metrics.json')) as f:
        metrics = json.load(f)
    finetune = report['stages'][1]
    assert finetune['metrics'] == metrics and report['stages'][0]['metrics'] == {}
    for task in ('bbox', 'segm'):
        row = [f'{metrics[f"coco/{task}_{s}"]:.3f}' for s in ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l')]
        assert has_row(markdown, 'finetune', task, *row)
    assert report['notes'] == []


def test_chain_tests_with_per_class_ap(chain):
    """The chain's test stage runs ``dp-test --classwise``: box and mask AP of each class, under the
    toy set's class names, in test_metrics.json, the run report and the chain's results table."""
    with open(osp.join(chain['ft_dir'], 'test_metrics.json')) as f:
        metrics = json.load(f)
    with open(osp.join(chain['report_dir'], 'report.md')) as f:
        markdown = f.read()
    for name in ('circle', 'rectangle', 'triangle', 'star'):
        cells = [('—' if metrics[f'coco/{task}_{name}_precision'] is None else
                  f'{metrics[f"coco/{task}_{name}_precision"]:.3f}') for task in ('bbox', 'segm')]
        assert has_row(markdown, 'finetune', name, *cells)
        assert has_row(chain['output'], 'test', name, *cells)


def test_report_plots_are_valid_images(chain):
    from matplotlib.image import imread
    for name in ('loss_curves.png', 'map.png', 'lr.png'):
        path = osp.join(chain['report_dir'], name)
        with open(path, 'rb') as f:
            assert f.read(8) == b'\x89PNG\r\n\x1a\n', name
        pixels = imread(path)
        assert pixels.ndim == 3 and pixels.shape[0] > 200 and pixels.shape[1] > 300, (name, pixels.shape)
        assert float(np.std(pixels)) > 0.01, f'{name} is blank'
        assert f']({name})' in open(osp.join(chain['report_dir'], 'report.md')).read()


def test_report_tool_rebuilds_the_report_from_work_dirs(chain, tmp_path):
    out = tmp_path / 'report'
    proc = run_tool(osp.join(TOOLS, 'report.py'), chain['pre_dir'], chain['ft_dir'], '--out', str(out), '--names',
                    'pretrain', 'finetune', cwd=chain['tmp'])
    assert f'report: {out / "report.md"}' in proc.stdout
    with open(out / 'report.json') as f, open(osp.join(chain['report_dir'], 'report.json')) as g:
        assert json.load(f)['stages'] == json.load(g)['stages']
    assert {p.name for p in out.iterdir()} == {'report.md', 'report.json', 'loss_curves.png', 'map.png', 'lr.png'}


def test_tensorboard_flag_writes_event_files(chain):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    for work_dir in (chain['pre_dir'], chain['ft_dir']):
        (events, ) = glob.glob(osp.join(work_dir, '*', 'vis_data', 'events.out.tfevents.*'))
        accumulator = EventAccumulator(events)
        accumulator.Reload()
        tags = accumulator.Tags()['scalars']
        assert {'loss', 'lr', 'peak_rss_mb'} <= set(tags), tags
        assert [e.step for e in accumulator.Scalars('loss')] == [1, 2, 3, 4]


@pytest.mark.slow  # runs the report tool as a process
def test_report_on_an_empty_work_dir_says_what_is_missing(tmp_path):
    empty = tmp_path / 'empty'
    empty.mkdir()
    proc = run_tool(osp.join(TOOLS, 'report.py'), str(empty), '--out', str(tmp_path / 'out'), cwd=str(tmp_path),
                    check=False)
    assert proc.returncode == 2
    assert f'no vis_data/scalars.json with training records under {empty}: was training started' in proc.stderr
    assert 'Traceback' not in proc.stderr and not (tmp_path / 'out').exists()
    from direct_pretrain.errors import ReportInputError
    from direct_pretrain.report.run_report import write_report
    with pytest.raises(ReportInputError, match=f"work dir '{tmp_path / 'nope'}' does not exist; pass the --work-dir"):
        write_report([str(tmp_path / 'nope')], str(tmp_path / 'out'))


def test_report_on_a_partial_work_dir_names_the_test_command(chain, tmp_path):
    """Only the pretrain dir (no test stage there): the report is made and says how to get mAP."""
    from direct_pretrain.report.run_report import write_report
    report = write_report([chain['pre_dir']], str(tmp_path))
    (note, no_map) = report.notes
    assert 'no test_metrics.json in' in note and 'dp-test ' in note and '--metrics-out' in note
    assert 'epoch_1.pth' in note  # the checkpoint named in last_checkpoint
    assert 'map.png not drawn' in no_map and not (tmp_path / 'map.png').exists()
    assert note in report.markdown and 'No test metrics found.' in report.markdown
    assert report.stages[0].iterations == 4


def test_mini_repro_rerun_skips_finished_stages_and_compares_the_arms(toy_chain_copy, tmp_path, caplog):
    """The chain's work dirs are laid out as arm 'work' of a mini reproduction rooted at the
    fixture's folder: a re-run trains nothing and writes the arm report and the comparison."""
    import logging

    from matplotlib.image import imread

    mini_repro = load_tool('mini_repro')
    Arm, run_mini_repro = mini_repro.Arm, mini_repro.run_mini_repro
    arm = Arm('work', 'tiny direct pretrain -> finetune', (('pretrain', toy_chain_copy['pre_cfg']),
                                                          ('finetune', toy_chain_copy['ft_cfg'])))
    out = tmp_path / 'mini'
    with caplog.at_level(logging.INFO):
        (result, ) = run_mini_repro(toy_chain_copy['tmp'], str(out), arms=[arm])
    assert [s.status for s in result.stages] == ['skipped'] * 3
    assert '[1/3] work/pretrain: skipped' in caplog.text and '[3/3] work/test: skipped' in caplog.text
    pre, ft = result.summaries
    assert (pre.iterations, ft.iterations) == (4, 4) and result.train_wall_s == pre.wall_s + ft.wall_s
    with open(out / 'results.json') as f:
        results = json.load(f)
    ratio = results['cost_ratio']
    assert ratio['ratio'] == pytest.approx(pre.seconds_per_image / ft.seconds_per_image)
    assert results['arms'][0]['metrics']['coco/bbox_mAP'] == ft.metrics['coco/bbox_mAP']
    markdown = (out / 'results.md').read_text()
    assert f'ratio {ratio["ratio"]:.2f}' in markdown and has_row(markdown, '(work) tiny direct pretrain -> finetune')
    assert (out / 'arm_work' / 'report.md').is_file()
    for name in ('compare_loss.png', 'compare_map.png'):
        assert imread(str(out / name)).shape[0] > 200
