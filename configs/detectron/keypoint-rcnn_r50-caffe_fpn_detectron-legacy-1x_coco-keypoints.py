# Keypoint R-CNN R-50-FPN with Detectron's (Caffe2) conventions, for its model-zoo weights
# (e2e_keypoint_rcnn_R-50-FPN_1x / _s1x, converted on the fly or by tools/convert_detectron.py).
#   test:  python tools/test.py THIS_CONFIG detectron://path/to/model_final.pkl --eval bbox keypoints
# Detectron settings as in faster-rcnn_r50-caffe_fpn_detectron-legacy-1x_coco.py, restated
# because that config's COCO-detection bases cannot be combined with the keypoint bases
# within three inheritance levels.
_base_ = [
    '../keypoint_rcnn/_base_/models/keypoint-rcnn_r50_fpn.py',
    '../keypoint_rcnn/_base_/datasets/coco_person_keypoints.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    '../keypoint_rcnn/_base_/default_runtime_keypoints.py',
]
custom_imports = dict(imports=['direct_pretrain'], allow_failed_imports=False)

detectron_imagenet = 'detectron://data/detectron/ImageNetPretrained/MSRA/R-50.pkl'

model = dict(
    # Detectron feeds BGR 0-255 minus PIXEL_MEANS, no std; FPN pads to COARSEST_STRIDE 32.
    data_preprocessor=dict(mean=[102.9801, 115.9465, 122.7717], std=[1.0, 1.0, 1.0], bgr_to_rgb=False,
                           pad_size_divisor=32),
    # MSRA ResNet: stride on the 1x1; AffineChannel = frozen BN in eval mode; FREEZE_AT 2.
    backbone=dict(style='caffe', norm_cfg=dict(type='BN', requires_grad=False), norm_eval=True, frozen_stages=1,
                  init_cfg=dict(type='Pretrained', checkpoint=detectron_imagenet)),
    rpn_head=dict(
        # _delete_: Detectron's quantised anchors; mmdet's AnchorGenerator args do not all apply.
        anchor_generator=dict(_delete_=True, type='DetectronAnchorGenerator', scales=[8], ratios=[0.5, 1.0, 2.0],
                              strides=[4, 8, 16, 32, 64]),
        bbox_coder=dict(type='LegacyDeltaXYWHBBoxCoder'),
        loss_bbox=dict(type='SmoothL1Loss', beta=1.0 / 9.0, loss_weight=1.0)),
    roi_head=dict(
        # Detectron RoIAlign: no half-pixel offset, sampling ratio 2 for boxes (7x7) and keypoints (14x14).
        bbox_roi_extractor=dict(roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=2, aligned=False)),
        keypoint_roi_extractor=dict(roi_layer=dict(type='RoIAlign', output_size=14, sampling_ratio=2,
                                                   aligned=False)),
        bbox_head=dict(bbox_coder=dict(type='LegacyDeltaXYWHBBoxCoder'),
                       loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0)),
        # KRCNN.UP_SCALE 2 through BilinearInterpolation: the fixed-kernel transposed conv.
        keypoint_head=dict(upsample_method='caffe2_bilinear')),
    # Detectron TEST: RPN_PRE/POST_NMS_TOP_N 1000 per level, RPN NMS 0.7, min size 0;
    # SCORE_THRESH 0.05, NMS 0.5, DETECTIONS_PER_IM 100 (keypoints on all of them).
    test_cfg=dict(
        rpn=dict(nms_pre=1000, max_per_img=1000, nms=dict(type='nms', iou_threshold=0.7), min_bbox_size=0),
        rcnn=dict(score_thr=0.05, nms=dict(type='nms', iou_threshold=0.5), max_per_img=100)))
