"""Bad input through ./dist_train.sh / ./dist_test.sh: the inputs are checked once before
torchrun starts any worker, so the job ends with one error: line, exit code 2, no
traceback, no torchrun report and no work dir; --data-root, the load_from message, the
--cfg-options value types and the batch-size warning as a user meets them; --check-only checks
once and starts no worker. The scripts' interpreter is forked from the session's pre-imported
tool server (``PYTHON``): the shell scripts are what is tested here."""
import os.path as osp
import subprocess

import pytest
from dp_test_utils import REPO_ROOT, TOY_PRETRAIN, python_env, write_tiny_stage_configs
from forked_cli import forked_python

from direct_pretrain.cli.train import build_config, parse_args
from direct_pretrain.errors import ConfigInputError



@pytest.fixture(scope='module')
def configs(tmp_path_factory, tiny_coco_root):
    return write_tiny_stage_configs(str(tmp_path_factory.mktemp('cfg')), tiny_coco_root)


def launch(script: str, *args: str, cwd, env_extra=None) -> subprocess.CompletedProcess:
    python = forked_python(str(cwd / 'bin'))
    env = python_env(**{'PORT': '29531', 'PYTHON': python, 'PYTHON_EXEC': python, **(env_extra or {})})
    return subprocess.run([osp.join(REPO_ROOT, script), *args], cwd=str(cwd), env=env, capture_output=True,
                          text=True, timeout=300)


def assert_one_error_line(proc: subprocess.CompletedProcess, *expected: str) -> None:
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out[-3000:]
    assert out.count('error:') == 1 and 'Traceback' not in out, out[-3000:]
    assert 'ChildFailedError' not in out and 'torch.distributed' not in out, out[-3000:]
    error = next(line for line in proc.stderr.splitlines() if line.startswith('error:'))
    for text in expected:
        assert text in error, error


@pytest.mark.slow  # dist_train.sh processes
def test_non_numeric_option_through_dist_train(configs, tmp_path):
    proc = launch('dist_train.sh', configs[0], '2', '--work-dir', str(tmp_path / 'wd'), '--cfg-options',
                  'train_dataloader.batch_size=abc', cwd=tmp_path)
    assert_one_error_line(proc, "train_dataloader.batch_size='abc'", 'takes a number')
    assert not (tmp_path / 'wd').exists()


def test_user_load_from_missing_names_that_path(configs, tmp_path, monkeypatch):
    """A load_from the user set is missing: the message is about that path, not the pretrain
    hint, which stays for the config's own load_from (the pretrain stage's output)."""
    monkeypatch.chdir(tmp_path)
    mine = str(tmp_path / 'my_checkpoints' / 'best.pth')
    with pytest.raises(ConfigInputError) as info:
        build_config(parse_args([configs[1], '--cfg-options', f'load_from={mine}']))
    assert str(info.value) == f"load_from checkpoint '{mine}' does not exist. Check the path."
    pretrain_output = f'work_dirs/{osp.splitext(osp.basename(configs[0]))[0]}/epoch_1.pth'
    with pytest.raises(ConfigInputError, match='It is written by the pretrain stage'):
        build_config(parse_args([configs[1], '--cfg-options', f'load_from={pretrain_output}']))
    assert not (tmp_path / 'work_dirs').exists()


@pytest.mark.slow  # dist_test.sh processes
def test_missing_checkpoint_through_dist_test(configs, tmp_path):
    proc = launch('dist_test.sh', configs[1], str(tmp_path / 'none.pth'), '2', '--work-dir', str(tmp_path / 'wd'),
                  cwd=tmp_path)
    assert_one_error_line(proc, 'none.pth', 'does not exist')
    assert not (tmp_path / 'wd').exists()


def test_missing_data_root_names_the_option_and_the_nested_key(tmp_path, tiny_coco_root, monkeypatch):
    """The shipped pretrain config nests its dataset in RepeatDataset: the error names
    --data-root and the key at the right depth, and --data-root then works."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigInputError) as info:
        build_config(parse_args([TOY_PRETRAIN, '--check-only']))
    message = str(info.value)
    assert '--data-root <path>' in message and 'train_dataloader.dataset.dataset.data_root=<path>' in message
    # (the toy config's warmup is longer than a run on the tiny set: shortened)
    cfg = build_config(parse_args([TOY_PRETRAIN, '--data-root', tiny_coco_root, '--cfg-options',
                                   'param_scheduler.0.end=1']))
    assert cfg.train_dataloader.dataset.dataset.data_root.rstrip('/') == tiny_coco_root.rstrip('/')
    assert not (tmp_path / 'work_dirs').exists()


def test_batch_warning_once_per_job(configs, tmp_path, monkeypatch, caplog):
    """dist_launch.sh's check runs with the job's world size and warns once, in one line naming
    the effective batch and --auto-scale-lr; torchrun's workers (DP_INPUTS_CHECKED) stay quiet."""
    monkeypatch.setenv('WORLD_SIZE', '2')
    monkeypatch.setenv('RANK', '0')
    args = [configs[0], '--launcher', 'pytorch', '--work-dir', str(tmp_path / 'wd')]
    with caplog.at_level('WARNING'):
        build_config(parse_args(args))
    warnings = [r.getMessage() for r in caplog.records if 'effective batch' in r.getMessage()]
    assert len(warnings) == 1 and '(2 processes x 2 images)' in warnings[0] and '\n' not in warnings[0]
    assert '--auto-scale-lr' in warnings[0] and not (tmp_path / 'wd').exists()
    caplog.clear()
    monkeypatch.setenv('DP_INPUTS_CHECKED', '1')  # set by dist_launch.sh for torchrun's workers
    with caplog.at_level('WARNING'):
        build_config(parse_args(args))
    assert not any('effective batch' in r.getMessage() for r in caplog.records)


@pytest.mark.slow  # dist_train.sh processes
def test_check_only_checks_once_and_starts_no_worker(configs, tmp_path):
    """``dist_train.sh CFG 2 --check-only`` (or an abbreviation argparse reads as it) is the
    launcher's own check and nothing else: the dataset check reports once and no worker process
    starts - a worker's interpreter here is ``/bin/false``, so one started would fail the job."""
    for flag in ('--check-only', '--check-o'):
        proc = launch('dist_train.sh', configs[0], '2', '--work-dir', str(tmp_path / 'wd'), flag, cwd=tmp_path,
                      env_extra=dict(PYTHON_EXEC='/bin/false'))
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out[-3000:]
        assert out.count('image check (quick): 0 bad file(s)') == 1, out[-3000:]
        assert 'torch.distributed' not in out, out[-3000:]
        assert not (tmp_path / 'wd').exists()
