"""How the chain starts its stages (one process, or torchrun with N) and checks them before any
runs: the checks get each stage's own dp-train arguments, a failure names the stage and its
config and leaves no work dir, ``check_only`` trains nothing."""
import os
import os.path as osp
import sys

import pytest
from dp_test_utils import write_tiny_stage_configs

from direct_pretrain.chain.chain import StageLauncher, run_chain
from direct_pretrain.cli.chain import main as chain_main
from direct_pretrain.errors import ConfigInputError


def test_one_process_runs_the_tool_itself():
    launcher = StageLauncher()
    assert launcher.command('train', ['cfg.py', '--work-dir', 'w']) == [
        sys.executable, '-m', 'direct_pretrain.cli.train', 'cfg.py', '--work-dir', 'w']
    assert launcher.check_args() == [] and launcher.world_size == 1


def test_torchrun_starts_the_stage_as_dist_launch_does(monkeypatch):
    monkeypatch.setenv('PORT', '29611')
    monkeypatch.setenv('NNODES', '2')
    launcher = StageLauncher(4, 'pytorch')
    cmd = launcher.command('test', ['cfg.py', 'ckpt.pth'])
    assert cmd[:3] == [sys.executable, '-m', 'torch.distributed.run']
    assert {'--nnodes=2', '--nproc_per_node=4', '--master_port=29611', '--node_rank=0'} <= set(cmd)
    assert cmd[cmd.index('--module') + 1:] == [
        'direct_pretrain.cli.test', 'cfg.py', 'ckpt.pth', '--launcher', 'pytorch']
    assert launcher.world_size == 8 and launcher.check_args() == ['--launcher', 'pytorch']
    monkeypatch.delenv('WORLD_SIZE', raising=False)
    monkeypatch.setenv('RANK', '3')
    with launcher.check_environment():  # the check runs as rank 0 of the job
        assert (os.environ['WORLD_SIZE'], os.environ['RANK']) == ('8', '0')
    assert 'WORLD_SIZE' not in os.environ and os.environ['RANK'] == '3'


@pytest.fixture
def pair(tmp_path, tiny_coco_root):
    return write_tiny_stage_configs(str(tmp_path / 'cfg'), tiny_coco_root)


def test_check_only_checks_both_stages_with_their_own_arguments(pair, tmp_path):
    seen = []
    work = tmp_path / 'work'
    results = run_chain(*pair, str(work), pretrain_args=['--accumulate', '2'], finetune_args=['--tensorboard'],
                        launcher=StageLauncher(2, 'pytorch'), check_stage=seen.append, check_only=True)
    assert results == []
    pre_dir, ft_dir = (str(work / osp.splitext(osp.basename(p))[0]) for p in pair)
    assert seen[0] == [pair[0], '--work-dir', pre_dir, '--accumulate', '2', '--launcher', 'pytorch']
    # the fine-tune's load_from is the pretrain's output; it does not exist yet, so it is not checked
    assert seen[1] == [pair[1], '--work-dir', ft_dir, '--cfg-options', f'load_from={pre_dir}/epoch_1.pth',
                       '--tensorboard', '--cfg-options', 'load_from=None', '--launcher', 'pytorch']
    assert not work.exists() or os.listdir(work) == []  # nothing trained, no stage dir left


def test_a_failing_check_names_the_stage_and_leaves_no_work_dir(pair, tmp_path):

    def refuse_finetune(argv):
        if argv[0] == pair[1]:
            raise ConfigInputError('num_classes is wrong')

    work = tmp_path / 'work'
    with pytest.raises(ConfigInputError, match=rf'^finetune stage \({pair[1]}\): num_classes is wrong$'):
        run_chain(*pair, str(work), check_stage=refuse_finetune)
    assert not work.exists() or os.listdir(work) == []


def test_a_finished_pretrain_is_not_checked_and_the_finetune_checks_its_checkpoint(pair, tmp_path):
    work = tmp_path / 'work'
    pre_dir = work / osp.splitext(osp.basename(pair[0]))[0]
    pre_dir.mkdir(parents=True)
    (pre_dir / 'epoch_1.pth').write_bytes(b'')
    seen = []
    run_chain(*pair, str(work), check_stage=seen.append, check_only=True)
    assert len(seen) == 1 and seen[0][0] == pair[1] and 'load_from=None' not in seen[0]
    assert f'load_from={pre_dir}/epoch_1.pth' in seen[0]


@pytest.mark.parametrize('argv, message', [
    (['--gpus', '2', '--launcher', 'none'], '--gpus 2 starts 2 processes per stage under torchrun'),
    (['--val-split', '0.1'], '--val-split describes the dataset of --data DIR'),
    (['--arch', 'faster', 'a.py', 'b.py'], 'pass either --arch or PRETRAIN_CFG FINETUNE_CFG'),
    (['--accumulate', '0'], '--accumulate 0: give a positive integer'),
    (['--cfg-options', 'novalue'], '--cfg-options: write each option as KEY=VALUE'),
])
def test_contradicting_flags_are_one_error_line(argv, message, capsys, tmp_path):
    assert chain_main([*argv, '--work-root', str(tmp_path / 'work')]) == 2
    err = capsys.readouterr().err
    assert err.count('error:') == 1 and message in err and not (tmp_path / 'work').exists()


def test_the_stages_length_comes_from_their_own_options(pair, tmp_path):
    """The chain expects the checkpoint the stage writes with the options it runs with:
    ``--cfg-options train_cfg.max_epochs=3`` makes the pretrain's output ``epoch_3.pth``, which
    the fine-tune loads."""
    seen = []
    work = tmp_path / 'work'
    run_chain(*pair, str(work), pretrain_args=['--cfg-options', 'train_cfg.max_epochs=3'], check_stage=seen.append,
              check_only=True)
    pre_dir = work / osp.splitext(osp.basename(pair[0]))[0]
    assert f'load_from={pre_dir}/epoch_3.pth' in seen[1]
