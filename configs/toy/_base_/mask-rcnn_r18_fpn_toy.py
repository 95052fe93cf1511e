# A tiny Mask R-CNN (ResNet-18, 64-channel FPN, 4conv1fc box head, synchronized BN in neck
# and heads so a small model trains from random init quickly) on the embedded
# toy COCO set, shrunk so the whole pretrain -> finetune -> test chain runs on 2 CPU cores.
# Stage configs in this folder set pipelines and schedules on top of it.
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['direct_pretrain'], allow_failed_imports=False)

data_root = 'data/toy_coco/'
metainfo = dict(
    classes=('circle', 'rectangle', 'triangle', 'star'),
    palette=[(220, 20, 60), (0, 128, 255), (0, 200, 80), (250, 170, 30)])
num_classes = 4
channels = 64
head_norm_cfg = dict(type='SyncBNAnyBackend', requires_grad=True)  # plain BN in a single process

model = dict(
    backbone=dict(depth=18, init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=channels, norm_cfg=head_norm_cfg),
    rpn_head=dict(in_channels=channels, feat_channels=channels),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=channels),
        bbox_head=dict(
            type='Shared4Conv1FCBBoxHead',
            in_channels=channels,
            conv_out_channels=channels,
            fc_out_channels=256,
            norm_cfg=head_norm_cfg,
            num_classes=num_classes),
        mask_roi_extractor=dict(out_channels=channels),
        mask_head=dict(in_channels=channels, conv_out_channels=channels, norm_cfg=head_norm_cfg,
                       num_classes=num_classes)),
    train_cfg=dict(
        rpn=dict(sampler=dict(num=128)),
        rpn_proposal=dict(nms_pre=400, max_per_img=200),
        rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(
        rpn=dict(nms_pre=300, max_per_img=100),
        rcnn=dict(max_per_img=30)))

test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(480, 320), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
# Workers are restarted every epoch so EpochSeedHook can make a resumed run exact.
train_dataloader = dict(
    num_workers=2,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=4)))
val_dataloader = dict(
    num_workers=2,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='val/'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator

# ResourceStatsHook logs peak RSS, wall time and images seen for tools/report.py.
custom_hooks = [dict(type='EpochSeedHook'), dict(type='ResourceStatsHook')]
randomness = dict(seed=0)
# Checkpoints are written through the package's atomic_local backend (never partial).
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=1, max_keep_ckpts=2, backend_args=dict(backend='atomic_local')))
log_processor = dict(window_size=10)
