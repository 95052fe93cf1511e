"""One checkpoint pre-check on every path, through the real tools (issue 21 item 2, issue 19 item 2).

Whatever names a bad checkpoint - ``load_from`` (plain, ``direct-release://``,
``detectron://``), ``--resume``, ``dp-test``'s or ``dp-infer``'s argument - the tool ends with
exactly one ``error:`` line naming the file and the problem, exit code 2, no traceback, no work
dir or output folder, and a hostile pickle never runs its payload. Checkpoints that are whole
but do not fill the config's model (another class count, missing tensors, NaN weights) are
refused the same way, before any Runner exists.

All runs are forked tool processes (``forked_cli.py``) started together; the checkpoints are the
tiny configs' model state with every tensor a broadcast scalar (a few bytes on disk, the real
names and shapes).
"""
import math
import os
import os.path as osp
import pickle
import zipfile
from collections import defaultdict

import pytest
import torch
from dp_test_utils import REPO_ROOT, Payload, write_tiny_stage_configs
from forked_cli import ToolRun, run_tools

pytestmark = pytest.mark.slow  # tool runs

TOY_FINETUNE_ZOO = osp.join(REPO_ROOT, 'configs/toy/mask-rcnn_r18_fpn_1xb2-direct-finetune_toy.py')
TOY_PRETRAIN_ZOO = osp.join(REPO_ROOT, 'configs/toy/mask-rcnn_r18_fpn_1xb8-direct-pretrain-192_toy.py')


def model_shapes(config: str, num_classes: int = None) -> dict:
    """Names and shapes of the config's model, built by mmdet on the meta device."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from mmdet.registry import MODELS
    cfg = Config.fromfile(config)
    if num_classes is not None:
        cfg.model.roi_head.bbox_head.num_classes = num_classes
        cfg.model.roi_head.mask_head.num_classes = num_classes
    init_default_scope('mmdet')
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def broadcast_state(shapes: dict, value: float = 0.0) -> dict:
    """Every tensor a broadcast scalar: a few bytes on disk, the real names and shapes."""
    return {k: torch.full((), value).expand(shape) if shape else torch.tensor(value) for k, shape in shapes.items()}


def rewrite_zip(src: str, dst: str, edit) -> str:
    """``src`` with each member's bytes passed through ``edit(name, data)`` (None drops it)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, 'w', zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = edit(info.filename, zin.read(info.filename))
            if data is not None:
                zout.writestr(info.filename, data)
    return dst


@pytest.fixture(scope='module')
def case_files(tmp_path_factory, tiny_coco_root):
    root = tmp_path_factory.mktemp('precheck_paths')
    pre, ft = write_tiny_stage_configs(str(root / 'cfg'), tiny_coco_root)
    shapes = model_shapes(ft)
    files = dict(root=str(root), pre=pre, ft=ft, pwned=str(root / 'PWNED'), images=str(root / 'images'),
                 num_tensors=str(len(shapes)))
    (root / 'images').mkdir()

    def save(name, obj):
        path = str(root / name)
        torch.save(obj, path)
        return path

    files['good'] = save('good.pth', dict(state_dict=broadcast_state(shapes), meta=dict(epoch=1, iter=2)))
    files['three_classes'] = save('three_classes.pth', dict(
        state_dict=broadcast_state(model_shapes(ft, num_classes=3)), meta=dict(epoch=1, iter=2)))
    files['all_nan'] = save('all_nan.pth', dict(state_dict=broadcast_state(shapes, math.nan), meta=dict(epoch=1)))
    files['no_state_dict'] = save('no_state_dict.pth', dict(meta=dict(epoch=1), model=broadcast_state(shapes)))
    files['top_level_list'] = save('top_level_list.pth', [broadcast_state(shapes)])
    # a well-formed zip missing one storage record, and one whose storage record is too small
    real = save('real.pth', dict(state_dict={'backbone.conv1.weight': torch.randn(64, 3, 7, 7)}, meta={}))
    files['missing_record'] = rewrite_zip(real, str(root / 'missing_record.pth'),
                                          lambda name, data: None if name.endswith('/data/0') else data)
    files['short_storage'] = rewrite_zip(real, str(root / 'short_storage.pth'),
                                         lambda name, data: data[:len(data) // 2] if name.endswith('/data/0') else data)
    # hostile and broken files behind the two package schemes
    files['release_evil'] = save('release_evil.pth', dict(state_dict=broadcast_state(shapes),
                                                          meta=Payload(files['pwned'])))
    files['detectron_evil'] = str(root / 'detectron_evil.pkl')
    with open(files['detectron_evil'], 'wb') as f:
        pickle.dump({'blobs': {'conv1_w': Payload(files['pwned'])}}, f, protocol=2)
    files['detectron_cut'] = str(root / 'detectron_cut.pkl')
    import numpy as np
    blob = pickle.dumps({'blobs': {'conv1_w': np.zeros((64, 3, 7, 7), np.float32)}}, protocol=2)
    with open(files['detectron_cut'], 'wb') as f:
        f.write(blob[:len(blob) // 2])
    # a user's fine-tune inheriting the toy "zoo" pair, with a pretrain config of their own next to it
    user = root / 'user'
    user.mkdir()
    (user / 'my_pretrain.py').write_text(f'_base_ = {TOY_PRETRAIN_ZOO!r}\n')
    (user / 'my_finetune.py').write_text(f'_base_ = {TOY_FINETUNE_ZOO!r}\n')
    (user / 'my_finetune_set.py').write_text(f'_base_ = {TOY_FINETUNE_ZOO!r}\n'
                                             "load_from = 'work_dirs/my_pretrain/epoch_4.pth'\n")
    files['user'] = str(user)
    # an earlier run's work dir whose newest checkpoint (what --resume without a path picks) is another config's
    auto = root / 'auto_resume_wd'
    auto.mkdir()
    (auto / 'epoch_1.pth').write_bytes(open(files['three_classes'], 'rb').read())
    (auto / 'last_checkpoint').write_text(str(auto / 'epoch_1.pth'))
    files['auto_resume_wd'] = str(auto)
    return files


#: name -> (tool, args builder, expected substrings of the error line); the work dir / out dir is appended.
def _cases(f):
    release = f'direct-release://{f["release_evil"]}'
    cases = {
        # hostile and broken files through the schemes, in every tool
        'train_release_evil': ('train', [f['ft'], '--cfg-options', f'load_from={release}'],
                               [f"load_from '{f['release_evil']}' is unsafe to load", 'posix.system']),
        'train_release_short': ('train', [f['ft'], '--cfg-options',
                                          f'load_from=direct-release://{f["short_storage"]}'],
                                [f"load_from '{f['short_storage']}' is incomplete: its storage record"]),
        'train_detectron_evil': ('train', [f['pre'], '--cfg-options', f'load_from=detectron://{f["detectron_evil"]}'],
                                 [f"load_from '{f['detectron_evil']}' is unsafe to load", 'posix.system']),
        'train_detectron_cut': ('train', [f['pre'], '--cfg-options', f'load_from=detectron://{f["detectron_cut"]}'],
                                [f"load_from '{f['detectron_cut']}' is truncated"]),
        'test_release_evil': ('test', [f['ft'], release],
                              [f"checkpoint '{f['release_evil']}' is unsafe", 'posix.system']),
        'test_release_short': ('test', [f['ft'], f'direct-release://{f["short_storage"]}'],
                               [f"checkpoint '{f['short_storage']}' is incomplete: its storage record"]),
        'test_detectron_evil': ('test', [f['ft'], f'detectron://{f["detectron_evil"]}'],
                                [f"checkpoint '{f['detectron_evil']}' is unsafe", 'posix.system']),
        'test_detectron_cut': ('test', [f['ft'], f'detectron://{f["detectron_cut"]}'],
                               [f"checkpoint '{f['detectron_cut']}' is truncated"]),
        'infer_release_evil': ('infer', [f['ft'], release], [f"checkpoint '{f['release_evil']}' is unsafe",
                                                              'posix.system']),
        'infer_release_short': ('infer', [f['ft'], f'direct-release://{f["short_storage"]}'],
                                [f"checkpoint '{f['short_storage']}' is incomplete: its storage record"]),
        'infer_detectron_evil': ('infer', [f['ft'], f'detectron://{f["detectron_evil"]}'],
                                 [f"checkpoint '{f['detectron_evil']}' is unsafe", 'posix.system']),
        'infer_detectron_cut': ('infer', [f['ft'], f'detectron://{f["detectron_cut"]}'],
                                [f"checkpoint '{f['detectron_cut']}' is truncated"]),
        # well-formed zips that are still broken
        'test_missing_record': ('test', [f['ft'], f['missing_record']],
                                ['is incomplete', 'tensor storage record(s) that the zip does not hold', '/data/0']),
        'resume_short_storage': ('train', [f['ft'], '--resume', f['short_storage']],
                                 [f"--resume '{f['short_storage']}' is incomplete", 'holds 18816 bytes',
                                  '9408 elements of 4 byte(s) (37632 bytes)']),
        'infer_top_level_list': ('infer', [f['ft'], f['top_level_list']],
                                 ['holds a list at its top level, not a checkpoint dict']),
        # whole checkpoints that do not fill the model
        'test_three_classes': ('test', [f['ft'], f['three_classes']],
                               ['has 3 classes in roi_head.bbox_head.fc_cls (4 rows incl. background) but the '
                                "config's head has 4: set num_classes=3 on every head of the config",
                                'model.roi_head.bbox_head.num_classes, model.roi_head.mask_head.num_classes']),
        'test_all_nan': ('test', [f['ft'], f['all_nan']],
                         [f'holds non-finite weights (NaN/inf) in {f["num_tensors"]} of {f["num_tensors"]} tensors',
                          'backbone.conv1.weight']),
        'test_no_state_dict': ('test', [f['ft'], f['no_state_dict']],
                               ['holds a dict without a "state_dict" entry (keys: meta, model)']),
        'infer_three_classes': ('infer', [f['ft'], f['three_classes']], ['has 3 classes in roi_head.bbox_head.fc_cls']),
        'resume_three_classes': ('train', [f['ft'], '--resume', f['three_classes']],
                                 [f"--resume '{f['three_classes']}' has 3 classes in roi_head.bbox_head.fc_cls"]),
        'auto_resume_three_classes': ('train', [f['ft'], '--resume', '--work-dir', f['auto_resume_wd']],
                                      [f"--resume '{osp.join(f['auto_resume_wd'], 'epoch_1.pth')}' has 3 classes"]),
        'finetune_nan': ('train', [f['ft'], '--cfg-options', f'load_from={f["all_nan"]}'],
                         [f"load_from '{f['all_nan']}' holds non-finite weights (NaN/inf)", 'backbone.conv1.weight',
                          'Use an earlier checkpoint of that run']),
        'pretrain_nan': ('train', [f['pre'], '--cfg-options', f'load_from={f["all_nan"]}'],
                         [f"load_from '{f['all_nan']}' holds non-finite weights (NaN/inf)"]),
        'finetune_three_classes': ('train', [f['ft'], '--cfg-options', f'load_from={f["three_classes"]}'],
                                   [f"load_from '{f['three_classes']}' has 3 classes in roi_head.bbox_head.fc_cls (4 "
                                    "rows incl. background) but the config's head has 4: set num_classes=3 on every "
                                    'head of the fine-tune config']),
        # the missing pretrain of a user's fine-tune that inherits the toy "zoo" fine-tune
        'user_inherits_load_from': ('train', [osp.join(f['user'], 'my_finetune.py')],
                                    ['my_finetune.py does not set load_from but inherits it from',
                                     TOY_FINETUNE_ZOO, 'Your pretrain config my_pretrain.py writes '
                                     "work_dirs/my_pretrain/epoch_4.pth: set load_from = "
                                     "'work_dirs/my_pretrain/epoch_4.pth' in my_finetune.py"]),
        'user_sets_load_from': ('train', [osp.join(f['user'], 'my_finetune_set.py')],
                                ["load_from checkpoint 'work_dirs/my_pretrain/epoch_4.pth' does not exist (set in "
                                 'my_finetune_set.py). It is written by the pretrain stage: run `dp-train '
                                 'my_pretrain.py`']),
    }
    return cases


#: checkpoints that fill the model pass the same checks (``--check-only``: nothing runs), next to a refused case
CONTROLS = {'test_good': 'test_three_classes', 'resume_good': 'resume_three_classes',
            'finetune_good': 'finetune_three_classes'}


@pytest.fixture(scope='module')
def outcomes(case_files):
    runs = {}
    for name, (tool, args, expected) in _cases(case_files).items():
        cwd = case_files['user'] if name.startswith('user_') else osp.join(case_files['root'], name)
        out = osp.join(case_files['root'], 'outputs', name)
        extra = [case_files['images'], '--out-dir', out] if tool == 'infer' else ['--work-dir', out]
        if '--work-dir' in args:  # its own (existing) work dir: nothing may be added to it
            extra, out = [], osp.join(args[args.index('--work-dir') + 1], '.lock')
        runs[name] = (ToolRun(tool, [*args, *extra], cwd), expected, out)
    good, ft, root = case_files['good'], case_files['ft'], case_files['root']
    controls = {
        'test_good': ToolRun('test', [ft, good, '--check-only'], root),
        'resume_good': ToolRun('train', [ft, '--resume', good, '--check-only'], root),
        'finetune_good': ToolRun('train', [ft, '--check-only', '--cfg-options', f'load_from={good}'], root),
    }
    run_tools([run for run, _, _ in runs.values()] + list(controls.values()))
    return runs, controls


@pytest.mark.parametrize('name', sorted(_cases(defaultdict(str))))
def test_one_error_line_exit_2_nothing_written(outcomes, case_files, name):
    run, expected, out = outcomes[0][name]
    context = f'{run.tool} {" ".join(run.args)}\n{run.stderr[-3000:]}'
    assert run.returncode == 2, context
    assert len(run.error_lines) == 1 and 'Traceback' not in run.stderr, context
    for text in expected:
        assert text in run.error_lines[0], (text, context)
    assert not osp.exists(out), context
    assert not osp.exists(osp.join(run.cwd, 'work_dirs')), context
    if name == 'auto_resume_three_classes':
        assert sorted(os.listdir(case_files['auto_resume_wd'])) == ['epoch_1.pth', 'last_checkpoint'], context
    assert not osp.exists(case_files['pwned'])  # no payload ever ran


@pytest.mark.parametrize('good, refused', sorted(CONTROLS.items()))
def test_a_checkpoint_that_fills_the_model_passes_where_another_class_count_is_refused(outcomes, good, refused):
    run = outcomes[1][good]
    assert run.returncode == 0 and not run.error_lines, run.stderr[-3000:]
    assert outcomes[0][refused][0].returncode == 2 and 'has 3 classes' in outcomes[0][refused][0].stderr
