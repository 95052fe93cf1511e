# Stage 1 of the toy keypoint chain: direct pre-training of the whole Keypoint R-CNN from
# random init at low resolution (128x128 crops, the toy analogue of the recipe's 448x448),
# BN trainable in train mode everywhere, constant LR after a linear warmup.
_base_ = './_base_/keypoint-rcnn_r18_fpn_toy.py'

crop = (128, 128)
model = dict(
    data_preprocessor=dict(pad_size_divisor=32),
    backbone=dict(frozen_stages=-1, norm_eval=False, norm_cfg=dict(type='SyncBNAnyBackend', requires_grad=True)))

# The recipe's low-res pipeline (docs/pipeline.md) with keypoints: reduced JPEG decode with the
# annotations loaded inside the loader, aspect cropping, then resize / crop / flip / pad as one
# unit; all of them move the keypoints with the boxes and swap left/right on the flip.
train_pipeline = [
    dict(type='LoadImageReduced', scale=crop, ratio_range=(0.8, 1.2), aspect_range=(0.5, 2.0),
         load_annotations=dict(type='LoadKeypointAnnotations', with_bbox=True)),
    dict(type='AspectRatioCrop', aspect_range=(0.5, 2.0)),
    dict(type='DirectPretrainResizeCrop', scale=crop, ratio_range=(0.8, 1.2), crop_size=crop, flip_prob=0.5,
         pad_val=dict(img=(114, 114, 114)), allow_negative_crop=True),
    dict(type='KeypointFilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(type='PackKeypointDetInputs')
]
train_dataloader = dict(
    batch_size=8,
    # _delete_: the base dataset is wrapped in RepeatDataset (the recipe repeats the set).
    dataset=dict(_delete_=True, type='RepeatDataset', times=2, dataset=dict(
        type='CocoKeypointDataset',
        data_root={{_base_.data_root}},
        metainfo={{_base_.metainfo}},
        ann_file='annotations/person_keypoints_train.json',
        data_prefix=dict(img='train/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=4, min_keypoints_per_image=1),
        pipeline=train_pipeline)))

train_cfg = dict(max_epochs=4)
# Validation off: no validation at low res; the finetune is what gets evaluated.
val_cfg = None
val_dataloader = None
val_evaluator = None
# _delete_ not needed: a list replaces the base's step schedule with warmup + constant LR.
param_scheduler = [dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=30)]
optim_wrapper = dict(
    optimizer=dict(lr=0.02, momentum=0.9, weight_decay=1e-4),
    paramwise_cfg=dict(norm_decay_mult=0.0),
    clip_grad=dict(max_norm=35, norm_type=2))
auto_scale_lr = dict(enable=False, base_batch_size=8)
