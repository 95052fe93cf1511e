# COCO person keypoints (person_keypoints_{train,val}2017.json) for Keypoint R-CNN:
# training images need at least one labelled keypoint, Detectron's multi-scale training
# (short side 640-800 in steps of 32, long side <= 1333, flip 0.5 with left/right swap),
# testing at 800 / 1333. Box AP and keypoint AP (OKS) are evaluated together.
_base_ = 'mmdet::_base_/datasets/coco_detection.py'

dataset_type = 'CocoKeypointDataset'  # metainfo: COCO person, 17 keypoints, flip pairs, OKS sigmas
data_root = 'data/coco/'

# Every geometric step moves the keypoints with the boxes (Keypoint* transforms and the
# keypoint-aware resize inside RandomChoiceResize); PackKeypointDetInputs checks it.
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadKeypointAnnotations', with_bbox=True),
    dict(type='RandomChoiceResize',
         scales=[(1333, 640), (1333, 672), (1333, 704), (1333, 736), (1333, 768), (1333, 800)],
         keep_ratio=True,
         resize_type='KeypointResize'),
    dict(type='KeypointRandomFlip', prob=0.5),
    dict(type='PackKeypointDetInputs')
]
train_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/person_keypoints_train2017.json',
        filter_cfg=dict(filter_empty_gt=True, min_size=32, min_keypoints_per_image=1),
        pipeline=train_pipeline))
# mmdet's test pipeline; annotations (loaded after the resize, in the original frame) are only
# drawn by --show-dir: the evaluator reads the ground truth from ann_file.
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='LoadKeypointAnnotations', with_bbox=True),
    dict(type='PackKeypointDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
val_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root, ann_file='annotations/person_keypoints_val2017.json',
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(
    type='CocoKeypointMetric',
    ann_file=data_root + 'annotations/person_keypoints_val2017.json',
    metric=['bbox', 'keypoints'])
test_evaluator = val_evaluator
