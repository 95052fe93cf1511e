# Direct pre-training (P1x) of a Faster R-CNN whose backbone is a timm model (ResNet-18),
# from random init at 448x448, with BatchNorm synchronized over all 8x8=64 images of a step
# on any backend (SyncBNAnyBackend runs on gloo/CPU too) in backbone, FPN and 4conv1fc box
# head. Stage 2: faster-rcnn_timm-resnet18_fpn_8xb2-direct-finetune-p1x-1x_coco.py.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['direct_pretrain'], allow_failed_imports=False)

norm_cfg = dict(type='SyncBNAnyBackend', requires_grad=True)
crop = (448, 448)

model = dict(
    # _delete_: mmdet's ResNet-50 arguments (depth, style, init_cfg=torchvision) do not apply to timm.
    backbone=dict(
        _delete_=True,
        type='TimmBackbone',
        model_name='resnet18',
        out_indices=(1, 2, 3, 4),  # timm levels of stride 4/8/16/32
        frozen_stages=-1,
        norm_eval=False,
        norm_cfg=norm_cfg,
        pretrained=False),
    neck=dict(in_channels=[64, 128, 256, 512], norm_cfg=norm_cfg),  # TimmBackbone.out_channels
    roi_head=dict(bbox_head=dict(type='Shared4Conv1FCBBoxHead', conv_out_channels=256, norm_cfg=norm_cfg)))

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomResize', scale=crop, ratio_range=(0.8, 1.2), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop, crop_type='absolute', recompute_bbox=True, allow_negative_crop=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='Pad', size=crop, pad_val=dict(img=(114, 114, 114))),
    dict(type='PackDetInputs')
]
train_dataloader = dict(
    batch_size=8,
    num_workers=4,
    # _delete_: the base's CocoDataset moves inside RepeatDataset (the recipe repeats the set x4).
    dataset=dict(
        _delete_=True,
        type='RepeatDataset',
        times=4,
        dataset=dict(
            type={{_base_.dataset_type}},
            data_root={{_base_.data_root}},
            ann_file='annotations/instances_train2017.json',
            data_prefix=dict(img='train2017/'),
            filter_cfg=dict(filter_empty_gt=True, min_size=32),
            pipeline=train_pipeline,
            backend_args={{_base_.backend_args}})))

train_cfg = dict(max_epochs=12)
# Constant LR after a linear warmup; the list replaces the base's step schedule.
param_scheduler = [dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=500)]
optim_wrapper = dict(
    optimizer=dict(lr=0.08, momentum=0.9, weight_decay=1e-4),
    paramwise_cfg=dict(norm_decay_mult=0.0))
auto_scale_lr = dict(enable=False, base_batch_size=64)
