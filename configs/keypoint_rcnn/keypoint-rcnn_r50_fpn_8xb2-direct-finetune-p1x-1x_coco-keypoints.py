# Fine-tune of the directly pre-trained Keypoint R-CNN R-50-FPN: the whole detector from the
# pretrain stage (load_from, checked key by key by LoadFromCheckHook), BN frozen as learned in
# pretraining, Detectron's keypoint 1x schedule with multi-scale (640-800) training.
_base_ = [
    './_base_/models/keypoint-rcnn_r50_fpn.py', './_base_/datasets/coco_person_keypoints.py',
    './_base_/schedules/schedule_keypoint-1x.py'
]
custom_imports = dict(imports=['direct_pretrain'], allow_failed_imports=False)

train_dataloader = dict(sampler=dict(type='InfiniteSampler', shuffle=True))  # the schedule counts iterations

pretrain_config = 'configs/keypoint_rcnn/keypoint-rcnn_r50_fpn_syncbn_8xb8-direct-pretrain-448-p1x_coco-keypoints.py'
load_from = 'work_dirs/keypoint-rcnn_r50_fpn_syncbn_8xb8-direct-pretrain-448-p1x_coco-keypoints/epoch_12.pth'

model = dict(
    backbone=dict(norm_cfg=dict(type='BN', requires_grad=False), norm_eval=True, frozen_stages=1, init_cfg=None),
    roi_head=dict(bbox_head=dict(type='Shared4Conv1FCBBoxHead', conv_out_channels=256)))

custom_hooks = [dict(type='LoadFromCheckHook')]
default_hooks = dict(checkpoint=dict(backend_args=dict(backend='atomic_local')))
