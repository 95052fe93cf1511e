# Faster R-CNN R-50-FPN with Detectron's (Caffe2) conventions, for its model-zoo weights
# (e2e_faster_rcnn_R-50-FPN_1x) and for training from its ImageNet R-50.pkl.
#   test:  python tools/test.py THIS_CONFIG detectron://path/to/model_final.pkl
# (mmdet's legacy_1.x configs cannot be inherited: mmengine rejects the '.' in 'legacy_1.x',
# so their Detectron settings are restated here.)
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['direct_pretrain'], allow_failed_imports=False)

# MSRA ImageNet weights, converted on the fly (direct_pretrain.checkpoint.detectron.scheme).
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
        # Box widths x2 - x1 + 1, BBOX_XFORM_CLIP log(1000/16); RPN SmoothL1 beta 1/9.
        bbox_coder=dict(type='LegacyDeltaXYWHBBoxCoder'),
        loss_bbox=dict(type='SmoothL1Loss', beta=1.0 / 9.0, loss_weight=1.0)),
    roi_head=dict(
        # Detectron RoIAlign: no half-pixel offset, ROI_XFORM_SAMPLING_RATIO 2 (FPN).
        bbox_roi_extractor=dict(roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=2, aligned=False)),
        # BBOX_REG_WEIGHTS (10, 10, 5, 5) = target_stds (0.1, 0.1, 0.2, 0.2), inherited.
        bbox_head=dict(bbox_coder=dict(type='LegacyDeltaXYWHBBoxCoder'),
                       loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0))),
    # Detectron TEST: RPN_PRE/POST_NMS_TOP_N 1000 per level, RPN NMS 0.7, min size 0;
    # SCORE_THRESH 0.05, NMS 0.5, DETECTIONS_PER_IM 100.
    test_cfg=dict(
        rpn=dict(nms_pre=1000, max_per_img=1000, nms=dict(type='nms', iou_threshold=0.7), min_bbox_size=0),
        rcnn=dict(score_thr=0.05, nms=dict(type='nms', iou_threshold=0.5), max_per_img=100)))
