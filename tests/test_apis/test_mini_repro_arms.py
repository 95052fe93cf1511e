"""The mini reproduction's arms are the thin deltas docs/mini_repro.md says they are."""
import os.path as osp

from mmengine.config import Config

from dp_test_utils import REPO_ROOT, TOY_FINETUNE
from direct_pretrain.apis.mini_repro import ARMS


def load(config: str) -> Config:
    return Config.fromfile(osp.join(REPO_ROOT, config))


def test_arms_train_what_they_claim():
    arms = {arm.key: arm for arm in ARMS}
    assert [stage for stage, _ in arms['a'].stages] == ['pretrain', 'finetune']
    toy_ft = Config.fromfile(TOY_FINETUNE)
    a_ft = load(arms['a'].stages[1][1])
    b = load(arms['b'].stages[0][1])
    c = load(arms['c'].stages[0][1])
    # (a): the main job's pair; its finetune trains exactly like the toy finetune, validated each epoch
    assert arms['a'].stages[0][1].endswith('mask-rcnn_r18_fpn_1xb8-direct-pretrain-192_toy.py')
    for key in ('model', 'train_dataloader', 'train_cfg', 'param_scheduler', 'optim_wrapper', 'load_from',
                'custom_hooks', 'randomness'):
        expected = dict(toy_ft.train_cfg, val_interval=1) if key == 'train_cfg' else toy_ft[key]
        assert a_ft[key] == expected, key
    assert toy_ft.val_cfg is None and a_ft.val_cfg.type == 'ValLoop'
    assert a_ft.val_dataloader.dataset == toy_ft.test_dataloader.dataset
    assert a_ft.val_evaluator.ann_file == toy_ft.test_evaluator.ann_file
    # (b): same data, schedule and optimizer, no load_from, trainable backbone BN, nothing frozen
    assert b.load_from is None
    assert (b.model.backbone.frozen_stages, b.model.backbone.norm_eval) == (-1, False)
    assert b.model.backbone.norm_cfg == dict(type='BN', requires_grad=True)
    for key in ('train_dataloader', 'train_cfg', 'param_scheduler', 'optim_wrapper', 'val_dataloader'):
        assert b[key] == a_ft[key], key
    assert 'LoadFromCheckHook' not in [h['type'] for h in b.custom_hooks]
    # (c): (b) for 5 epochs, LR step before the last one
    assert c.train_cfg.max_epochs == 5 and c.param_scheduler[1].milestones == [4]
    assert c.model == b.model and c.train_dataloader == b.train_dataloader and c.optim_wrapper == b.optim_wrapper
