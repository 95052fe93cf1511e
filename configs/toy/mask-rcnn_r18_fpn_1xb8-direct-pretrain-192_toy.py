# Stage 1 of the toy chain: direct pre-training of the whole detector from random init at
# low resolution (192x192 crops, the toy analogue of the recipe's 448x448), BN trainable in
# train mode everywhere, constant LR after a linear warmup, no weight decay on norms.
_base_ = './_base_/mask-rcnn_r18_fpn_toy.py'

crop = (192, 192)
model = dict(
    data_preprocessor=dict(pad_size_divisor=32),
    backbone=dict(frozen_stages=-1, norm_eval=False, norm_cfg=dict(type='SyncBNAnyBackend', requires_grad=True)))

# The recipe's low-res pipeline as package transforms (docs/pipeline.md): JPEGs decoded at
# 1/2-1/8 when the sampled scale allows, annotations loaded inside the loader so they are
# rescaled with the image, Detectron aspect cropping to [0.5, 2], then resize / crop /
# flip / pad as one unit. Loader and resize must share scale, ratio_range and aspect_range.
train_pipeline = [
    dict(type='LoadImageReduced', scale=crop, ratio_range=(0.8, 1.2), aspect_range=(0.5, 2.0),
         load_annotations=dict(type='LoadAnnotations', with_bbox=True, with_mask=True, poly2mask=False)),
    dict(type='AspectRatioCrop', aspect_range=(0.5, 2.0)),
    dict(type='DirectPretrainResizeCrop', scale=crop, ratio_range=(0.8, 1.2), crop_size=crop, flip_prob=0.5,
         pad_val=dict(img=(114, 114, 114)), allow_negative_crop=True, recompute_bbox=True, poly2mask=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(type='PackDetInputs')
]
train_dataloader = dict(
    batch_size=8,
    # _delete_: the base dataset is wrapped in RepeatDataset (the recipe repeats the set x4).
    dataset=dict(_delete_=True, type='RepeatDataset', times=2, dataset=dict(
        type='CocoDataset',
        data_root={{_base_.data_root}},
        metainfo={{_base_.metainfo}},
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=4),
        pipeline=train_pipeline)))

train_cfg = dict(max_epochs=4)
# Validation off: no validation at low res; the finetune is what gets evaluated.
val_cfg = None
val_dataloader = None
val_evaluator = None
# _delete_: constant LR after warmup replaces the base's step schedule.
param_scheduler = [dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=30)]
optim_wrapper = dict(
    optimizer=dict(lr=0.02, momentum=0.9, weight_decay=1e-4),
    paramwise_cfg=dict(norm_decay_mult=0.0),
    clip_grad=dict(max_norm=35, norm_type=2))
auto_scale_lr = dict(enable=False, base_batch_size=8)
# The base's hooks plus NonFiniteLossHook: a NaN/inf loss stops the run before the optimizer
# step (one error line naming the iteration and the last good checkpoint).
custom_hooks = [dict(type='EpochSeedHook'), dict(type='ResourceStatsHook'), dict(type='NonFiniteLossHook')]
