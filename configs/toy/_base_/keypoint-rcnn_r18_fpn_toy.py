# A tiny Keypoint R-CNN (ResNet-18 at half width, 64-channel FPN, 4conv1fc box head, a 4 x 64-channel
# keypoint head, synchronized BN in neck and heads so a small model trains from random init
# quickly) on the embedded toy keypoint set (stick figures with 13 keypoints,
# direct_pretrain.datasets.generate_toy_keypoints), shrunk so pretrain -> finetune -> test
# runs on 2 CPU cores. Stage configs in this folder set pipelines and schedules on top of it.
_base_ = [
    '../../keypoint_rcnn/_base_/models/keypoint-rcnn_r50_fpn.py',
    '../../keypoint_rcnn/_base_/datasets/coco_person_keypoints.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    '../../keypoint_rcnn/_base_/default_runtime_keypoints.py',
]
custom_imports = dict(imports=['direct_pretrain'], allow_failed_imports=False)

data_root = 'data/toy_keypoints/'
# direct_pretrain.datasets.TOY_KEYPOINT_META (the figures' keypoints, 0-based skeleton).
metainfo = dict(
    classes=('figure', ),
    palette=[(220, 20, 60)],
    keypoint_names=('head', 'left_shoulder', 'right_shoulder', 'left_elbow', 'right_elbow', 'left_wrist',
                    'right_wrist', 'left_hip', 'right_hip', 'left_knee', 'right_knee', 'left_ankle', 'right_ankle'),
    skeleton=((0, 1), (0, 2), (1, 2), (1, 3), (3, 5), (2, 4), (4, 6), (1, 7), (2, 8), (7, 8), (7, 9), (9, 11),
              (8, 10), (10, 12)),
    flip_indices=(0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11),
    keypoint_sigmas=(.026, .079, .079, .072, .072, .062, .062, .107, .107, .087, .087, .089, .089))
channels = 64
head_norm_cfg = dict(type='SyncBNAnyBackend', requires_grad=True)  # plain BN in a single process

model = dict(
    backbone=dict(depth=18, base_channels=32, init_cfg=None),
    neck=dict(in_channels=[32, 64, 128, 256], out_channels=channels, norm_cfg=head_norm_cfg),
    rpn_head=dict(in_channels=channels, feat_channels=channels),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=channels),
        bbox_head=dict(
            type='Shared4Conv1FCBBoxHead',
            in_channels=channels,
            conv_out_channels=channels,
            fc_out_channels=256,
            norm_cfg=head_norm_cfg),
        keypoint_roi_extractor=dict(out_channels=channels),
        keypoint_head=dict(
            num_keypoints=13, num_convs=4, in_channels=channels, conv_out_channels=channels,
            norm_cfg=head_norm_cfg)),
    train_cfg=dict(
        rpn=dict(sampler=dict(num=128)),
        rpn_proposal=dict(nms_pre=400, max_per_img=200),
        rcnn=dict(sampler=dict(num=64))),
    # Keypoint AP counts the 20 best detections per image.
    test_cfg=dict(
        rpn=dict(nms_pre=300, max_per_img=100),
        rcnn=dict(max_per_img=20)))

test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(192, 192), keep_ratio=True),
    dict(type='LoadKeypointAnnotations', with_bbox=True),
    dict(type='PackKeypointDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
# Workers are restarted every epoch so EpochSeedHook can make a resumed run exact.
train_dataloader = dict(
    num_workers=2,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/person_keypoints_train.json',
        data_prefix=dict(img='train/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=4, min_keypoints_per_image=1)))
val_dataloader = dict(
    num_workers=2,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/person_keypoints_val.json',
        data_prefix=dict(img='val/'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/person_keypoints_val.json')
test_evaluator = val_evaluator

# ResourceStatsHook logs peak RSS, wall time and images seen for tools/report.py.
custom_hooks = [dict(type='EpochSeedHook'), dict(type='ResourceStatsHook')]
randomness = dict(seed=0)
# Checkpoints are written through the package's atomic_local backend (never partial).
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=1, max_keep_ckpts=2, backend_args=dict(backend='atomic_local')))
log_processor = dict(window_size=10)
