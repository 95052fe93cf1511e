"""``tools/convert_release.py``: a real process converts and checks against the row's config;
bad input (through the same ``main``, in process) is one ``error:`` line, exit 2, nothing written."""
import os.path as osp
import subprocess

import pytest
import torch
from dp_test_utils import PYTHON, REPO_ROOT, TOOLS, Payload, python_env
from release_fixtures import COCO_CLASSES, release_meta, release_optimizer, release_state_dict, write_release_checkpoint

from direct_pretrain.runtime.safe_load import safe_torch_load

TOOL = osp.join(TOOLS, 'convert_release.py')


def run_tool(*args):
    return subprocess.run([PYTHON, TOOL, *map(str, args)], cwd=REPO_ROOT, env=python_env(), capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope='module')
def retinanet_file(tmp_path_factory):
    state = release_state_dict('retinanet')
    path = str(tmp_path_factory.mktemp('release') / 'retinanet_finetune.pth')
    return write_release_checkpoint(path, state, release_meta('retinanet', 'fine-tuned'),
                                    release_optimizer(state, 'retinanet')), state


def test_convert_checks_against_the_rows_config_and_writes_a_safe_checkpoint(retinanet_file, tmp_path):
    src, state = retinanet_file
    dst = tmp_path / 'out' / 'retinanet.pth'
    result = run_tool(src, dst, '--report-json')
    assert result.returncode == 0, result.stderr
    assert 'row retinanet, fine-tuned' in result.stdout
    assert 'checked against' in result.stdout and 'retinanet_r50_fpn_8xb2-direct-finetune-p1x-1x_coco.py' in result.stdout
    assert 'dropped: optimizer state' in result.stdout
    checkpoint = safe_torch_load(str(dst))  # weights-only, no extra allow-list needed
    assert set(checkpoint['state_dict']) == set(state)
    assert all(torch.equal(checkpoint['state_dict'][k], v) for k, v in state.items())
    assert checkpoint['meta']['dataset_meta']['classes'] == COCO_CLASSES
    assert checkpoint['meta']['release_conversion']['source_of']['bbox_head.retina_cls.weight'] == \
        'bbox_head.retina_cls.weight'
    assert osp.isfile(tmp_path / 'out' / 'retinanet.conversion.json')


def run_main(capsys, *args):
    from direct_pretrain.cli.convert_release import main
    code = main([str(a) for a in args])
    return code, capsys.readouterr()


def test_a_file_of_no_row_is_one_error_line_naming_the_closest(tmp_path, capsys):
    state = {k: v for k, v in release_state_dict('faster').items() if not k.startswith('rpn_head.')}
    src = write_release_checkpoint(str(tmp_path / 'norpn.pth'), state, {})
    dst = tmp_path / 'out.pth'
    code, out = run_main(capsys, src, dst, '--no-check')
    assert code == 2
    lines = out.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: ') and "closest is 'faster'" in lines[0]
    assert 'rpn_head.rpn_cls.bias' in lines[0]
    assert not dst.exists()


def test_an_unsafe_file_is_refused(tmp_path, capsys):
    marker = tmp_path / 'pwned'
    meta = release_meta('faster', 'pre-trained')
    meta['evil'] = Payload(str(marker))
    src = write_release_checkpoint(str(tmp_path / 'evil.pth'), {'backbone.conv1.weight': torch.zeros(1)}, meta)
    code, out = run_main(capsys, src, tmp_path / 'out.pth')
    assert code == 2 and out.err.startswith('error: refusing to load checkpoint')
    assert not marker.exists() and not (tmp_path / 'out.pth').exists()
