# Direct pre-training (P1x) of Keypoint R-CNN R-50-FPN: the whole detector, keypoint branch
# included, from random init at 448x448 on COCO person keypoints, with the published recipe
# of the other families (configs/direct_pretraining): 8 GPUs x 8 images, the train set x4
# per epoch, 12 epochs at constant lr 0.08 after warmup, BN trained and synchronized.
# Stage 2: keypoint-rcnn_r50_fpn_8xb2-direct-finetune-p1x-1x_coco-keypoints.py.
_base_ = [
    './_base_/models/keypoint-rcnn_r50_fpn.py',
    './_base_/datasets/coco_person_keypoints.py',
    '../direct_pretraining/_base_/schedules/schedule_direct-pretrain-p1x.py',
    './_base_/default_runtime_keypoints.py',
]
custom_imports = dict(imports=['direct_pretrain'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        frozen_stages=-1,
        norm_eval=False,
        norm_cfg=dict(type='SyncBNAnyBackend', requires_grad=True),
        zero_init_residual=False,
        init_cfg=None),  # random init: no ImageNet weights
    # The recipe's 4conv1fc box head (no norm), kept by the fine-tune.
    roi_head=dict(bbox_head=dict(type='Shared4Conv1FCBBoxHead', conv_out_channels=256)))

crop_size = (448, 448)
mean_bgr = (104, 116, 124)  # padding normalises to 0, as the batch padding does
# The recipe's low-res unit; it moves keypoints (and swaps left/right on its flip) like boxes.
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadKeypointAnnotations', with_bbox=True),
    dict(type='DirectPretrainResizeCrop', scale=crop_size, ratio_range=(0.8, 1.2), crop_size=crop_size,
         flip_prob=0.5, pad_val=dict(img=mean_bgr, masks=0, seg=255)),
    dict(type='PackKeypointDetInputs')
]
train_dataloader = dict(
    batch_size=8,
    num_workers=4,
    # _delete_: the keypoint dataset moves inside a RepeatDataset (times=4 as published).
    dataset=dict(
        _delete_=True,
        type='RepeatDataset',
        times=4,
        dataset=dict(
            type={{_base_.dataset_type}},
            data_root={{_base_.data_root}},
            ann_file='annotations/person_keypoints_train2017.json',
            data_prefix=dict(img='train2017/'),
            filter_cfg=dict(filter_empty_gt=True, min_size=32, min_keypoints_per_image=1),
            pipeline=train_pipeline,
            backend_args={{_base_.backend_args}})))

# Checkpoints and last_checkpoint are written atomically (the package's atomic_local backend).
default_hooks = dict(checkpoint=dict(backend_args=dict(backend='atomic_local')))
