"""The run's command line as recorded for the restart command: every word kept as typed, only
``--resume`` and the changed ``--cfg-options`` keys edited; a launcher's command (dist_train.sh)
in place of a worker's. The restart command through the real tools is in
tests/test_tools/test_non_finite_loss_tool.py and test_dist_train.py."""
import shlex
import sys

from direct_pretrain.cli.train import build_parser
from direct_pretrain.runtime.run_command import record_run_command, restart_command, split_options

ARGS = ['cfg.py', '--work-dir', 'my wd', '--data-root', '/data/coco', '--res', '--cfg-options', 'a=1',
        'custom_hooks.0.resume_lr_mult=0.5', 'b=[1,2]', '--amp', '--accumulate=2']


def test_options_are_split_as_argparse_reads_them():
    entries = split_options(build_parser(), ARGS)
    assert [(e['dest'], e['words']) for e in entries] == [
        ('positional', ['cfg.py']), ('work_dir', ['--work-dir', 'my wd']), ('data_root', ['--data-root', '/data/coco']),
        ('resume', ['--res']), ('cfg_options', ['--cfg-options', 'a=1', 'custom_hooks.0.resume_lr_mult=0.5', 'b=[1,2]']),
        ('amp', ['--amp']), ('accumulate', ['--accumulate=2'])]
    assert [e['dest'] for e in split_options(build_parser(), ['--resume', 'x.pth', 'cfg.py'])] == ['resume',
                                                                                                 'positional']


def test_the_restart_command_changes_only_resume_and_the_given_keys():
    record = dict(cwd='/runs/here', env={}, prefix=['dp-train'], args=split_options(build_parser(), ARGS))
    command = restart_command(record, 'my wd/epoch_3.pth', {'custom_hooks.0.resume_lr_mult': 0.5})
    assert command == 'cd /runs/here && dp-train ' + shlex.join([
        'cfg.py', '--work-dir', 'my wd', '--data-root', '/data/coco', '--cfg-options', 'a=1', 'b=[1,2]', '--amp',
        '--accumulate=2', '--resume', 'my wd/epoch_3.pth', '--cfg-options', 'custom_hooks.0.resume_lr_mult=0.5'])
    # no checkpoint: --resume stays as typed; a --cfg-options left empty goes
    record['args'] = split_options(build_parser(), ['cfg.py', '--cfg-options=randomness.seed=3', '--resume'])
    assert restart_command(record, None, {'randomness.seed': 4}) == ('cd /runs/here && dp-train cfg.py --resume '
                                                                    '--cfg-options randomness.seed=4')


def test_a_launcher_command_replaces_the_workers(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv('DP_LAUNCH_HEAD', "./dist_train.sh 'my cfg.py' 2 ")
    monkeypatch.setenv('DP_LAUNCH_TAIL', "--work-dir 'my wd' --resume ")
    monkeypatch.setenv('DP_LAUNCH_ENV', "PORT=29501 MASTER_ADDR='a b' ")
    worker = ['my cfg.py', '--work-dir', 'my wd', '--resume', '--launcher', 'pytorch']
    monkeypatch.setattr(sys, 'argv', ['train.py', *worker])
    record = record_run_command(build_parser(), None, 'direct_pretrain.cli.train')
    assert record['prefix'] == ['./dist_train.sh', 'my cfg.py', '2']
    assert restart_command(record, 'wd/epoch_1.pth') == (
        f"cd {shlex.quote(str(tmp_path))} && PORT=29501 MASTER_ADDR='a b' ./dist_train.sh 'my cfg.py' 2 --work-dir "
        "'my wd' --resume wd/epoch_1.pth")
    # left over in the environment of a process the launcher did not start: ignored
    monkeypatch.setattr(sys, 'argv', ['train.py', 'other.py'])
    monkeypatch.setattr(sys, 'orig_argv', ['python', 'tools/train.py', 'other.py'])
    assert record_run_command(build_parser(), None, 'x')['prefix'] == ['python', 'tools/train.py']


def test_how_the_tool_was_started(monkeypatch, tmp_path):
    script = tmp_path / 'bin' / 'dp-train'
    script.parent.mkdir()
    script.write_text('#!/bin/sh\n')
    script.chmod(0o755)
    monkeypatch.setattr(sys, 'argv', [str(script), 'cfg.py'])
    monkeypatch.setattr(sys, 'orig_argv', ['/venv/bin/python', str(script), 'cfg.py'])
    monkeypatch.setenv('PATH', str(script.parent))
    assert record_run_command(build_parser(), None, 'x')['prefix'] == ['dp-train']  # the console script on PATH
    monkeypatch.setenv('PATH', '/nowhere')
    assert record_run_command(build_parser(), None, 'x')['prefix'] == ['/venv/bin/python', str(script)]
    monkeypatch.setattr(sys, 'orig_argv', ['python', '-u', '-m', 'direct_pretrain.cli.train', 'cfg.py'])
    assert record_run_command(build_parser(), None, 'x')['prefix'] == ['python', '-u', '-m',
                                                                      'direct_pretrain.cli.train']
    # main(argv) called in-process: this interpreter runs the module
    record = record_run_command(build_parser(), ['cfg.py'], 'direct_pretrain.cli.train')
    assert record['prefix'] == [sys.executable, '-m', 'direct_pretrain.cli.train']
