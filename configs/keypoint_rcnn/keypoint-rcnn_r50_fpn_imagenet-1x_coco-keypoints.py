# Comparison arm: Keypoint R-CNN R-50-FPN from ImageNet weights (torchvision ResNet-50,
# frozen BN, stem + stage 1 frozen: mmdet's Faster R-CNN base), Detectron's keypoint 1x
# schedule with multi-scale training. The counterpart of detectron2's
# COCO-Keypoints/keypoint_rcnn_R_50_FPN_1x (published box AP 53.6, keypoint AP 64.0).
_base_ = [
    './_base_/models/keypoint-rcnn_r50_fpn.py', './_base_/datasets/coco_person_keypoints.py',
    './_base_/schedules/schedule_keypoint-1x.py'
]
custom_imports = dict(imports=['direct_pretrain'], allow_failed_imports=False)

train_dataloader = dict(sampler=dict(type='InfiniteSampler', shuffle=True))  # the schedule counts iterations
