"""``dp-convert-release`` in process: bad input is one ``error:`` line, exit 2, nothing written
(the tool as a real process, converting and refusing outputs: test_convert_cli.py)."""
import os.path as osp

import pytest
import torch
from dp_test_utils import Payload
from release_fixtures import release_meta, release_state_dict, write_release_checkpoint

from direct_pretrain.checkpoint.release.mapping import RELEASE_ROWS
from direct_pretrain.cli.convert_release import default_config, main
from direct_pretrain.config.paths import installed_configs_dir


def run_main(capsys, *args):
    code = main([str(a) for a in args])
    return code, capsys.readouterr()


@pytest.mark.parametrize('row', RELEASE_ROWS, ids=[r.name for r in RELEASE_ROWS])
def test_each_rows_configs_are_installed_and_the_fine_tune_one_is_the_default_target(row):
    """What the documented commands name ships with the package: the row's pretrain and
    fine-tune configs, the latter the tool's default target for the row (test_release_rows.py
    loads every row's files into the model that config builds)."""
    installed = installed_configs_dir()
    relative = [osp.relpath(config, 'configs') for config in (row.pretrain_config, row.finetune_config)]
    assert all(osp.isfile(osp.join(installed, config)) for config in relative), relative
    assert default_config(row.arch, row.schedule) == osp.join(installed, relative[1])


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
    assert code == 2 and out.err.startswith(f"error: release checkpoint '{src}' is unsafe to load")
    assert len(out.err.strip().splitlines()) == 1
    assert not marker.exists() and not (tmp_path / 'out.pth').exists()
