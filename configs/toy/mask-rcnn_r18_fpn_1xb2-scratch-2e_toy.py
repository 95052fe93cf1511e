# Mini reproduction, arm (b): fine-tune only, from scratch. The toy finetune config and
# budget (2 epochs at 480x320, same LR schedule, validated every epoch like arm (a)'s
# finetune) without load_from. With no pretrained BN statistics to keep, the backbone's BN
# must train: norm_eval False, BN affine trainable, and nothing frozen (frozen_stages -1) -
# the from-scratch settings of mmdet's strong baseline and of the recipe's pretrain stage.
# Plain BN: one process, batch 2.
_base_ = './mask-rcnn_r18_fpn_1xb2-direct-finetune-val_toy.py'

pretrain_config = None
load_from = None
model = dict(backbone=dict(frozen_stages=-1, norm_eval=False, norm_cfg=dict(type='BN', requires_grad=True)))
# No LoadFromCheckHook: nothing is loaded.
custom_hooks = [dict(type='EpochSeedHook'), dict(type='ResourceStatsHook')]
