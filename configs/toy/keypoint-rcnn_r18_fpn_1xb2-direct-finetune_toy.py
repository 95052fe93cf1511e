# Stage 2 of the toy keypoint chain: fine-tune at full resolution from the whole pretrained
# detector (load_from), backbone BN frozen and stem + stage 1 frozen, multi-scale training
# (the toy analogue of Detectron's 640-800) with left/right-swapping flips, step schedule.
_base_ = './_base_/keypoint-rcnn_r18_fpn_toy.py'

pretrain_config = 'configs/toy/keypoint-rcnn_r18_fpn_1xb8-direct-pretrain-128_toy.py'
load_from = 'work_dirs/keypoint-rcnn_r18_fpn_1xb8-direct-pretrain-128_toy/epoch_4.pth'

model = dict(backbone=dict(frozen_stages=1, norm_eval=True, norm_cfg=dict(type='BN', requires_grad=False)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadKeypointAnnotations', with_bbox=True),
    dict(type='RandomChoiceResize', scales=[(192, 160), (192, 176), (192, 192)], keep_ratio=True,
         resize_type='KeypointResize'),
    dict(type='KeypointRandomFlip', prob=0.5),
    dict(type='PackKeypointDetInputs')
]
train_dataloader = dict(batch_size=2, dataset=dict(pipeline=train_pipeline))

train_cfg = dict(max_epochs=2)
# Validation off: evaluated once, by the test stage.
val_cfg = None
val_dataloader = None
val_evaluator = None
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=30),
    dict(type='MultiStepLR', begin=0, end=2, by_epoch=True, milestones=[1], gamma=0.1)
]
optim_wrapper = dict(optimizer=dict(lr=0.01), clip_grad=dict(max_norm=35, norm_type=2))
auto_scale_lr = dict(enable=False, base_batch_size=2)
custom_hooks = [dict(type='EpochSeedHook'), dict(type='LoadFromCheckHook', strict=True),
                dict(type='ResourceStatsHook')]
