"""Both converters' tools as real processes: they convert, and they never lose a user's file.

Every run below is a forked ``python -m direct_pretrain.cli.convert_{detectron,release}``
process (``forked_cli.py``: one pre-imported interpreter, all runs started together). An
output that is the input - the same path, a symlink or a hard link to it, ``sub/../in.pkl``,
the JSON report aimed at it - is refused with one ``error:`` line and exit code 2, and the input is untouched
byte for byte; an output folder that is missing (Detectron tool) or cannot be created (release
tool) is refused before anything is converted. A process killed while writing (its file-size
limit reached: SIGXFSZ) leaves the previous output file as it was.
"""
import hashlib
import json
import os
import os.path as osp
import resource
import signal
import sys

import numpy as np
import pytest
import torch
from detectron_fixtures import detectron_shapes, dump_py2_pickle
from forked_cli import ToolRun, run_tools
from release_fixtures import (COCO_CLASSES, mmdet2_r50_shapes, release_meta, release_optimizer, release_state_dict,
                              write_release_checkpoint)

from direct_pretrain.cli import convert_detectron as detectron_cli
from direct_pretrain.runtime.safe_load import safe_torch_load


def _tiny_detectron(path: str) -> None:
    """Every R-50 blob name, one value each: converts with ``--arch R-50`` in milliseconds."""
    dump_py2_pickle({name: np.full((1, ), 0.5, np.float32) for name in detectron_shapes('R-50')}, path)


def _tiny_release(path: str) -> None:
    """Every key of the release's RetinaNet, one value each: converts with ``--no-check``."""
    state = {key: torch.zeros(1) for key in mmdet2_r50_shapes('retinanet')}
    write_release_checkpoint(path, state, release_meta('retinanet', 'fine-tuned'))


def _digest(path: str) -> str:
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def _listing(folder: str) -> dict:
    """Every entry below ``folder`` (hidden ones too): path -> content digest, or link target."""
    out = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = osp.join(root, name)
            rel = osp.relpath(path, folder)
            out[rel] = ('link', os.readlink(path)) if osp.islink(path) else \
                ('dir', ) if osp.isdir(path) else ('file', _digest(path))
    return out


#: case -> (tool, input, arguments after the input, setup): each refused case runs in its own
#: folder holding its own tiny input ``in.pkl`` / ``in.pth``.
REFUSED = {
    'detectron-same-path': ('convert_detectron', 'in.pkl', ['in.pkl', '--arch', 'R-50'], None),
    'detectron-symlink': ('convert_detectron', 'in.pkl', ['link.pth', '--arch', 'R-50'],
                          lambda d: os.symlink('in.pkl', osp.join(d, 'link.pth'))),
    'detectron-hard-link': ('convert_detectron', 'in.pkl', ['hard.pth', '--arch', 'R-50'],
                            lambda d: os.link(osp.join(d, 'in.pkl'), osp.join(d, 'hard.pth'))),
    'detectron-dotdot': ('convert_detectron', 'in.pkl', ['sub/../in.pkl', '--arch', 'R-50'],
                         lambda d: os.mkdir(osp.join(d, 'sub'))),
    'detectron-report-is-input': ('convert_detectron', 'in.pkl', ['out.pth', '--arch', 'R-50', '--report-json',
                                                                  'in.pkl'], None),
    'detectron-missing-folder': ('convert_detectron', 'in.pkl', ['missing/out.pth', '--arch', 'R-50'], None),
    'release-same-path': ('convert_release', 'in.pth', ['in.pth', '--no-check'], None),
    'release-symlink': ('convert_release', 'in.pth', ['link.pth', '--no-check'],
                        lambda d: os.symlink(osp.join(d, 'in.pth'), osp.join(d, 'link.pth'))),
    'release-folder-cannot-be-created': ('convert_release', 'in.pth', ['afile/sub/out.pth', '--no-check'],
                                         lambda d: open(osp.join(d, 'afile'), 'w').close()),
}


@pytest.fixture(scope='module')
def cli_runs(tmp_path_factory, r50_pkl):
    """All runs of this module at once; returns name -> (ToolRun, folder, listing before)."""
    root = str(tmp_path_factory.mktemp('convert_cli'))
    runs, folders, before = {}, {}, {}
    for name, (tool, source, args, setup) in REFUSED.items():
        folder = osp.join(root, name)
        os.makedirs(folder)
        (_tiny_detectron if source.endswith('.pkl') else _tiny_release)(osp.join(folder, source))
        if setup:
            setup(folder)
        runs[name] = ToolRun(tool, [source] + args, folder)
        folders[name], before[name] = folder, _listing(folder)

    release = osp.join(root, 'release-ok')
    state = release_state_dict('retinanet')
    release_src = write_release_checkpoint(osp.join(release, 'retinanet_finetune.pth'), state,
                                           release_meta('retinanet', 'fine-tuned'), release_optimizer(state, 'retinanet'))
    runs['release-ok'] = ToolRun('convert_release', [release_src, 'out/retinanet.pth', '--report-json'], release)
    detectron = osp.join(root, 'detectron-ok')
    runs['detectron-ok'] = ToolRun('convert_detectron', [r50_pkl, 'r50.pth', '--arch', 'R-50', '--report-json'],
                                   detectron)
    run_tools(list(runs.values()))
    return dict(runs=runs, folders=folders, before=before, release_state=state, r50_pkl=r50_pkl)


@pytest.mark.parametrize('name', list(REFUSED))
def test_an_output_that_would_lose_a_file_is_refused_before_converting(cli_runs, name):
    run, folder = cli_runs['runs'][name], cli_runs['folders'][name]
    assert run.returncode == 2, (run.stdout, run.stderr)
    assert len(run.error_lines) == 1 and 'Traceback' not in run.stderr, run.stderr
    assert 'tensors converted' not in run.stdout  # refused before the conversion, not after it
    assert _listing(folder) == cli_runs['before'][name]  # input byte for byte, nothing written or created
    error = run.error_lines[0]
    if 'missing-folder' in name:
        assert "the folder" in error and 'does not exist' in error and 'mkdir -p' in error
    elif 'cannot-be-created' in name:
        assert 'cannot be created' in error and 'afile' in error
    else:
        assert 'is the input file' in error and 'in.p' in error


def test_the_detectron_tool_converts(cli_runs, r50_blobs):
    run = cli_runs['runs']['detectron-ok']
    assert run.returncode == 0, run.stderr
    assert '159 tensors converted' in run.stdout and 'ignored leftover: fc1000_w' in run.stdout
    folder = run.cwd
    checkpoint = safe_torch_load(osp.join(folder, 'r50.pth'))  # weights-only loadable
    np.testing.assert_array_equal(checkpoint['state_dict']['layer1.0.conv1.weight'].numpy(),
                                  r50_blobs['res2_0_branch2a_w'])
    with open(osp.join(folder, 'r50.conversion.json')) as f:
        report = json.load(f)
    assert report['ok'] and {e['target']: e['source'] for e in report['converted']}['conv1.weight'] == 'conv1_w'
    assert sorted(os.listdir(folder)) == ['r50.conversion.json', 'r50.pth']  # no temporary file left


def test_the_release_tool_checks_against_the_rows_config_and_creates_the_output_folder(cli_runs):
    run, state = cli_runs['runs']['release-ok'], cli_runs['release_state']
    assert run.returncode == 0, run.stderr
    assert 'row retinanet, fine-tuned' in run.stdout
    assert 'checked against' in run.stdout and 'retinanet_r50_fpn_8xb2-direct-finetune-p1x-1x_coco.py' in run.stdout
    assert 'dropped: optimizer state' in run.stdout
    out = osp.join(run.cwd, 'out')
    checkpoint = safe_torch_load(osp.join(out, 'retinanet.pth'))  # weights-only, no extra allow-list needed
    assert set(checkpoint['state_dict']) == set(state)
    assert all(torch.equal(checkpoint['state_dict'][k], v) for k, v in state.items())
    assert checkpoint['meta']['dataset_meta']['classes'] == COCO_CLASSES
    assert checkpoint['meta']['release_conversion']['source_of']['bbox_head.retina_cls.weight'] == \
        'bbox_head.retina_cls.weight'
    assert sorted(os.listdir(out)) == ['retinanet.conversion.json', 'retinanet.pth']


def _convert_in_a_child(args, folder: str, limit: int, die: bool) -> tuple:
    """Run the Detectron tool in a forked child whose files may not grow past ``limit`` bytes;
    ``die``: the kernel kills it there (SIGXFSZ), else the write fails (Python ignores SIGXFSZ).
    Returns the child's wait status and the file holding its stderr (beside ``folder``)."""
    stderr = osp.join(osp.dirname(folder), osp.basename(folder) + '.stderr')
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child)
        code = 70
        try:
            os.chdir(folder)
            sys.stdout = open(os.devnull, 'w')
            sys.stderr = open(stderr, 'w')  # opened before the limit applies
            if die:
                signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
            code = detectron_cli.main(args)
        finally:
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return status, stderr


@pytest.mark.parametrize('die', [True, False], ids=['killed', 'write-fails'])
def test_an_interrupted_write_leaves_the_previous_output_whole(tmp_path, die):
    """The previous ``out.pth`` survives a conversion that dies (or fails) half-way through
    writing the new one: the new bytes go to a temporary file renamed over it when complete."""
    folder = tmp_path / 'case'
    folder.mkdir()
    _tiny_detectron(str(folder / 'in.pkl'))
    previous = b'the previous conversion, complete'
    (folder / 'out.pth').write_bytes(previous)
    status, stderr = _convert_in_a_child(['in.pkl', 'out.pth', '--arch', 'R-50'], str(folder), limit=16384, die=die)
    assert (folder / 'out.pth').read_bytes() == previous
    leftovers = sorted(set(os.listdir(folder)) - {'in.pkl', 'out.pth'})
    if die:
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGXFSZ, status  # killed mid-write
        assert len(leftovers) <= 1 and all(n.startswith('.out.pth.') and n.endswith('.tmp') for n in leftovers)
    else:
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 1, status
        lines = open(stderr).read().strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: writing 'out.pth' failed"), lines
        assert leftovers == []  # the temporary file is removed
