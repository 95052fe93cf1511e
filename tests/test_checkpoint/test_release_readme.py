"""The configs README lists the release's 14 checkpoints with a working command for each."""
import os.path as osp
import re

from dp_test_utils import REPO_ROOT

from direct_pretrain.checkpoint.release.mapping import RELEASE_ROWS


def test_configs_readme_lists_the_14_release_checkpoints_and_their_commands():
    with open(osp.join(REPO_ROOT, 'configs', 'direct_pretraining', 'README.md')) as f:
        lines = [line for line in f.read().splitlines() if line.startswith('|') and 'direct-release://' in line]
    assert len(lines) == 14
    for row in RELEASE_ROWS:
        assert osp.isfile(osp.join(REPO_ROOT, row.pretrain_config)), row.pretrain_config
        assert osp.isfile(osp.join(REPO_ROOT, row.finetune_config)), row.finetune_config
        for stage, link, tool in zip(('pre-trained', 'fine-tuned'), row.links, ('dist_train.sh', 'dist_test.sh')):
            line = [x for x in lines if f'({link})' in x]
            assert len(line) == 1, (row.name, stage)
            assert f'| {stage} |' in line[0] and f'./{tool} {row.finetune_config} ' in line[0]
            assert row.published in line[0]
            saved_as = re.search(r'\| `([^`]+\.pth)` \|', line[0]).group(1)
            assert f'direct-release://checkpoints/release/{saved_as}' in line[0]
            if stage == 'fine-tuned':
                assert line[0].rstrip(' |`').endswith('--eval bbox segm' if 'mask' in row.arch else '--eval bbox')
