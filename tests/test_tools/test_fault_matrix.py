"""Issue 14 replayed through the real tools on the toy data.

The matrix: each bad input (datasets without usable boxes, an empty dataset, unknown
categories, degenerate polygons, zero-byte and truncated JPEGs, empty, truncated and
non-checkpoint files for every tool that reads one) must end its tool with exactly one
``error:`` line naming what is wrong, exit code 2, no traceback and nothing written. The
runs are forked tool processes (see ``forked_cli.py``), all started together.

Then the process behaviour, with tool runs forked from the same server that the test watches
and signals (real processes, each in its own process group): no dataloader worker survives a
SIGKILL or SIGTERM of the training process by 5 s, a second run into a live run's work dir is
refused naming its PID, stale temporary checkpoint files are removed at start, the chain holds
its stage dirs and its stages (real child processes of the chain) die with it; and bad images
met during training are skipped, listed in the run report, and stop the run above the limit.
"""
import json
import math
import os
import os.path as osp
import re
import shutil
import signal
import tempfile
import time

import psutil
import pytest
import torch

from dp_test_utils import write_tiny_stage_configs
from forked_cli import Pending, ToolRun, group_survivors, run_tools

TIMESTAMP_DIR = re.compile(r'^\d{8}_\d{6}$')


def make_case(root, tiny_coco_root, name, mutate=None):
    """A copy of the toy data with ``mutate(annotations, data_dir)`` applied, and tiny configs on it."""
    case = osp.join(root, name)
    data = osp.join(case, 'data')
    shutil.copytree(tiny_coco_root, data)
    if mutate is not None:
        path = osp.join(data, 'annotations', 'instances_train.json')
        with open(path) as f:
            annotations = json.load(f)
        mutate(annotations, data)
        with open(path, 'w') as f:
            json.dump(annotations, f)
    pre, ft = write_tiny_stage_configs(osp.join(case, 'cfg'), data)
    return case, pre, ft


def for_all_annotations(fn):
    def mutate(annotations, data):
        for ann in annotations['annotations']:
            fn(ann)
    return mutate


def damage_images(kind, count=1):
    def mutate(annotations, data):
        for name in sorted(os.listdir(osp.join(data, 'train')))[:count]:
            path = osp.join(data, 'train', name)
            content = open(path, 'rb').read()
            with open(path, 'wb') as f:
                f.write(b'' if kind == 'empty' else content[:len(content) // 2])
    return mutate


def first_train_image(data):
    return osp.join(data, 'train', sorted(os.listdir(osp.join(data, 'train')))[0])


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp('ckpts')
    good = root / 'good.pth'
    torch.save({'state_dict': {'w': torch.randn(256, 256)}, 'meta': {'epoch': 1}}, good)
    files = dict(empty=root / 'empty.pth', truncated=root / 'truncated.pth', text=root / 'notes.pth',
                 pkl=root / 'empty.pkl')
    files['empty'].write_bytes(b'')
    files['truncated'].write_bytes(good.read_bytes()[:good.stat().st_size * 2 // 3])
    files['text'].write_text('not a checkpoint')
    files['pkl'].write_bytes(b'')
    return {k: str(v) for k, v in files.items()}


def test_bad_inputs_fail_up_front_with_one_error_line(tmp_path, tiny_coco_root, checkpoints):
    root = str(tmp_path)
    cases = []  # (run, expected substrings, paths that must not exist afterwards)

    def train_case(name, mutate, expected, cfg='pre', extra=()):
        case, pre, ft = make_case(root, tiny_coco_root, name, mutate)
        work_dir = osp.join(case, 'wd')
        run = ToolRun('train', [pre if cfg == 'pre' else ft, '--work-dir', work_dir, *extra], case)
        cases.append((run, expected(case) if callable(expected) else expected, [work_dir]))

    nan = for_all_annotations(lambda a: a['bbox'].__setitem__(2, math.nan))
    train_case('all_nan', nan, ['NaN/inf box coordinates', 'none of the 8 training images has an instance'])
    train_case('all_negative_width', for_all_annotations(lambda a: a['bbox'].__setitem__(2, -a['bbox'][2])),
               ['box width or height below 1 px', 'trained as pure background'], cfg='ft')
    train_case('no_annotations', lambda ann, data: ann.update(annotations=[]),
               ['no training image is left: the file has no annotations'])
    train_case('unknown_categories', for_all_annotations(lambda a: a.update(category_id=a['category_id'] + 100)),
               ['category_id not among the configured classes', 'dropped by filter_cfg.filter_empty_gt'])
    two_points = for_all_annotations(lambda a: a.update(segmentation=[a['segmentation'][0][:4]]))
    train_case('degenerate_polygons_package_pipeline', two_points, ['no polygon with 3 or more points'])
    train_case('degenerate_polygons_stock_pipeline', two_points, ['no polygon with 3 or more points'], cfg='ft')
    train_case('no_images', lambda ann, data: ann.update(images=[], annotations=[]), ['the file lists no images'])
    no_limit = ['--cfg-options', 'dataset_check.max_bad_images=0']
    train_case('zero_byte_jpeg', damage_images('empty'),
               lambda case: ['empty file (0 bytes)', first_train_image(osp.join(case, 'data')),
                             'more than dataset_check.max_bad_images=0'], extra=no_limit)
    train_case('truncated_jpeg', damage_images('truncated'),
               lambda case: ['truncated JPEG', first_train_image(osp.join(case, 'data'))],
               extra=['--check-images', 'full', *no_limit])
    train_case('empty_load_from', None, [f"load_from '{checkpoints['empty']}' is empty (0 bytes)"], cfg='ft',
               extra=['--cfg-options', f'load_from={checkpoints["empty"]}'])
    train_case('truncated_resume', None, [f"--resume '{checkpoints['truncated']}' is truncated or corrupt",
                                          'central directory'], extra=['--resume', checkpoints['truncated']])
    case, _, ft = make_case(root, tiny_coco_root, 'tools')
    for kind, expected in (('empty', 'is empty'), ('truncated', 'is truncated'), ('text', 'is not a torch checkpoint')):
        work_dir = osp.join(case, f'test_{kind}')
        cases.append((ToolRun('test', [ft, checkpoints[kind], '--work-dir', work_dir], case),
                      [f"checkpoint '{checkpoints[kind]}' {expected}"], [work_dir]))
    out_dir = osp.join(case, 'infer_out')
    cases.append((ToolRun('infer', [ft, checkpoints['truncated'], osp.join(case, 'data', 'val'), '--out-dir', out_dir],
                          case), [f"checkpoint '{checkpoints['truncated']}' is truncated"], [out_dir]))
    converted = osp.join(case, 'converted.pth')
    cases.append((ToolRun('convert_detectron', [checkpoints['pkl'], converted], case),
                  [f"Detectron weights '{checkpoints['pkl']}' is empty"], [converted]))
    released = osp.join(case, 'released.pth')
    cases.append((ToolRun('convert_release', [checkpoints['truncated'], released], case),
                  [f"release checkpoint '{checkpoints['truncated']}' is truncated"], [released]))

    start = time.time()
    run_tools([run for run, _, _ in cases])
    elapsed = time.time() - start
    for run, expected, must_not_exist in cases:
        context = f'{run.tool} {" ".join(run.args)}\n{run.stderr[-3000:]}'
        assert run.returncode == 2, context
        assert len(run.error_lines) == 1 and 'Traceback' not in run.stderr, context
        for text in expected:
            assert text in run.error_lines[0], (text, context)
        for path in must_not_exist:
            assert not osp.exists(path), (path, context)
    print(f'{len(cases)} failing runs in {elapsed:.1f} s')


def _wait_for(read, pattern, timeout=600, proc=None):
    """The text ``read()`` returns once ``pattern`` is in it (or fail, also when ``proc`` ended)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        text = read()
        if re.search(pattern, text):
            return text
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.2)
    raise AssertionError(f'{pattern!r} not seen:\n{text[-3000:]}')


def _file(path):
    return lambda: open(path).read() if osp.exists(path) else ''


class _Watched:
    """A tool run forked from the tool server (``forked_cli.Pending``) that the test watches and
    signals: a real process with its own PID and process group, which every process it starts
    (dataloader workers, a chain's stages and theirs) inherits, also once re-parented to init."""

    def __init__(self, tool, args, cwd):
        self.pending = Pending([ToolRun(tool, [str(a) for a in args], cwd)])
        self.run = self.pending.runs[0]
        self.pid = self.run.pid

    def output(self):
        return ''.join(open(path, errors='replace').read() for path in (self.run.stdout_path, self.run.stderr_path))

    def poll(self):
        return self.wait() if self.pending.finished() else None

    def send_signal(self, sig):
        os.kill(self.pid, sig)

    def wait(self, timeout=60):
        self.pending.wait(timeout)
        return self.run.returncode

    def close(self):
        """Ends the run and every process of its group, if still there."""
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except OSError:
            pass
        self.wait()


def _start_training(case, cfg, work_dir, *extra):
    return _Watched('train', [cfg, '--work-dir', work_dir, '--cfg-options', 'train_dataloader.num_workers=2',
                              'train_cfg.max_epochs=50', *extra], case)


def _descendants(pid, at_least, timeout=120):
    """``pid``'s descendants once there are ``at_least`` of them (dataloader workers are
    restarted every epoch, so a look between two epochs may find none)."""
    deadline = time.time() + timeout
    while True:
        found = psutil.Process(pid).children(recursive=True)
        if len(found) >= at_least or time.time() > deadline:
            return found
        time.sleep(0.05)


def _kill_and_check_workers(proc, sig):
    workers = _descendants(proc.pid, 2)
    assert len(workers) >= 2, workers  # the two dataloader workers of the running epoch
    proc.send_signal(sig)
    assert proc.wait(timeout=60) == -sig
    survivors = group_survivors(proc.pid)
    for survivor in survivors:  # do not leave them behind even when the test fails
        survivor.kill()
    assert not survivors, [(p.pid, p.status()) for p in survivors]


@pytest.mark.slow  # trains until killed
def test_sigkill_leaves_no_worker_and_a_second_run_is_refused(tmp_path, tiny_coco_root):
    case, pre, _ = make_case(str(tmp_path), tiny_coco_root, 'sigkill')
    work_dir = osp.join(case, 'wd')
    proc = _start_training(case, pre, work_dir)
    try:
        _wait_for(proc.output, r'Epoch\(train\) +\[1\]\[1/4\]', proc=proc)
        stamps = sorted(n for n in os.listdir(work_dir) if TIMESTAMP_DIR.match(n))
        second, = run_tools([ToolRun('train', [pre, '--work-dir', work_dir, '--resume'], case)])
        assert second.returncode == 2 and len(second.error_lines) == 1, second.stderr[-3000:]
        assert f'is in use by a running process: PID {proc.pid}' in second.error_lines[0]
        assert sorted(n for n in os.listdir(work_dir) if TIMESTAMP_DIR.match(n)) == stamps  # it wrote nothing
        _kill_and_check_workers(proc, signal.SIGKILL)
    finally:
        proc.close()


@pytest.mark.slow  # trains until killed
def test_sigterm_leaves_no_worker_and_stale_temp_files_are_removed(tmp_path, tiny_coco_root):
    case, pre, _ = make_case(str(tmp_path), tiny_coco_root, 'sigterm')
    work_dir = osp.join(case, 'wd')
    os.makedirs(work_dir)
    stale = []
    for target in ('epoch_2.pth', 'last_checkpoint'):  # what a kill during the atomic writer's write leaves
        fd, path = tempfile.mkstemp(prefix=f'.{target}.', suffix='.tmp', dir=work_dir)
        os.write(fd, b'\0' * 1000)
        os.close(fd)
        stale.append(path)
    for keep in ('notes.tmp', '.epoch_2.pth.tmp'):
        open(osp.join(work_dir, keep), 'w').close()
    proc = _start_training(case, pre, work_dir)
    try:
        text = _wait_for(proc.output, r'Epoch\(train\) +\[1\]\[1/4\]', proc=proc)
        assert f'removed 2 stale temporary checkpoint file(s) of an interrupted write from {work_dir}' in text
        assert not any(osp.exists(p) for p in stale)
        assert osp.exists(osp.join(work_dir, 'notes.tmp')) and osp.exists(osp.join(work_dir, '.epoch_2.pth.tmp'))
        _kill_and_check_workers(proc, signal.SIGTERM)
    finally:
        proc.close()


@pytest.mark.slow  # trains until killed
def test_chain_holds_its_stage_dirs_and_its_stages_die_with_it(tmp_path, tiny_coco_root):
    case, pre, ft = make_case(str(tmp_path), tiny_coco_root, 'chain')
    long_pre = osp.join(case, 'cfg', 'long_pretrain.py')
    with open(long_pre, 'w') as f:
        f.write(f'_base_ = {pre!r}\ntrain_dataloader = dict(num_workers=2)\ntrain_cfg = dict(max_epochs=50)\n')
    work_root = osp.join(case, 'work')
    chain_cmd = [long_pre, ft, '--work-root', work_root, '--no-report']
    chain = _Watched('chain', chain_cmd, case)  # its stage: a real child process of the chain
    try:
        stage_dir = osp.join(work_root, 'long_pretrain')
        # the stage trains under the chain's lock (its output goes to <stage dir>/stage.log)
        _wait_for(_file(osp.join(stage_dir, 'stage.log')), r'Epoch\(train\) +\[1\]\[1/4\]', proc=chain)
        again, direct = run_tools([ToolRun('chain', chain_cmd, case),
                                   ToolRun('train', [long_pre, '--work-dir', stage_dir, '--resume'], case)])
        for run in (again, direct):
            assert run.returncode == 2 and len(run.error_lines) == 1, run.stderr[-3000:]
            assert f'is in use by a running process: PID {chain.pid}' in run.error_lines[0]
        descendants = _descendants(chain.pid, 3)
        assert len(descendants) >= 3, descendants  # the stage process and its two workers
        chain.send_signal(signal.SIGTERM)
        assert chain.wait(timeout=60) == -signal.SIGTERM
        survivors = group_survivors(chain.pid)
        for survivor in survivors:
            survivor.kill()
        assert not survivors, [(p.pid, p.cmdline()[:4]) for p in survivors]
    finally:
        chain.close()


@pytest.mark.slow  # two trainings
def test_bad_images_met_in_training_are_skipped_reported_and_limited(tmp_path, tiny_coco_root):
    case, pre, _ = make_case(str(tmp_path), tiny_coco_root, 'runtime', damage_images('truncated', count=2))
    bad = sorted(os.listdir(osp.join(case, 'data', 'train')))[:2]
    tolerant, limited = osp.join(case, 'tolerant'), osp.join(case, 'limited')
    one_epoch = ['--cfg-options', 'train_cfg.max_epochs=1']
    runs = run_tools([
        ToolRun('train', [pre, '--work-dir', tolerant, *one_epoch], case),  # default: quick check, limit 10
        ToolRun('train', [pre, '--work-dir', limited, '--check-images', 'off', '--cfg-options',
                          'train_cfg.max_epochs=1', 'dataset_check.max_bad_images=1'], case),
    ])
    ok, stopped = runs
    assert ok.returncode == 0, ok.stderr[-3000:]
    for name in bad:
        assert f'{name} (truncated JPEG' in ok.stderr  # the up-front warning names them
    skipped = [json.loads(line)['path'] for line in open(osp.join(tolerant, 'bad_images.jsonl'))]
    assert sorted({osp.basename(p) for p in skipped}) == bad
    assert osp.isfile(osp.join(tolerant, 'epoch_1.pth'))
    report, = run_tools([ToolRun('report', [tolerant, '--out', osp.join(case, 'report')], case)])
    assert report.returncode == 0, report.stderr[-3000:]
    text = open(osp.join(case, 'report', 'report.md')).read()
    assert '## Bad images skipped during training' in text and all(name in text for name in bad)

    assert stopped.returncode == 2 and len(stopped.error_lines) == 1, stopped.stderr[-3000:]
    assert '2 bad image file(s) were skipped during training, more than the 1' in stopped.error_lines[0]
    assert all(name in stopped.error_lines[0] for name in bad)
    assert not osp.exists(osp.join(limited, 'epoch_1.pth'))
