# RetinaNet R-50-FPN with Detectron's (Caffe2) conventions, for its model-zoo weights
# (retinanet_R-50-FPN_1x) and for training from its ImageNet R-50.pkl.
#   test:  python tools/test.py THIS_CONFIG detectron://path/to/model_final.pkl
# Inherited: FPN from C3 with P6 = conv on C5 (add_extra_convs='on_input'), 4-conv towers,
# focal loss (gamma 2, alpha 0.25). Anchor order: the converter permutes Detectron's
# octave-outer/ratio-inner prediction channels to mmdet's ratio-outer order, so the ratios
# stay [0.5, 1.0, 2.0] here. (mmdet's legacy_1.x configs cannot be inherited: mmengine
# rejects the '.' in 'legacy_1.x'.)
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['direct_pretrain'], allow_failed_imports=False)

detectron_imagenet = 'detectron://data/detectron/ImageNetPretrained/MSRA/R-50.pkl'

model = dict(
    # Detectron feeds BGR 0-255 minus PIXEL_MEANS, no std; RetinaNet COARSEST_STRIDE 128.
    data_preprocessor=dict(mean=[102.9801, 115.9465, 122.7717], std=[1.0, 1.0, 1.0], bgr_to_rgb=False,
                           pad_size_divisor=128),
    # MSRA ResNet: stride on the 1x1; AffineChannel = frozen BN in eval mode; FREEZE_AT 2.
    backbone=dict(style='caffe', norm_cfg=dict(type='BN', requires_grad=False), norm_eval=True, frozen_stages=1,
                  init_cfg=dict(type='Pretrained', checkpoint=detectron_imagenet)),
    # Detectron applies a ReLU to P6 before the P7 conv (FPN.add_fpn, EXTRA_CONV_LEVELS).
    neck=dict(relu_before_extra_convs=True),
    bbox_head=dict(
        # _delete_: Detectron's quantised anchors; mmdet's AnchorGenerator args do not all apply.
        anchor_generator=dict(_delete_=True, type='DetectronAnchorGenerator', octave_base_scale=4,
                              scales_per_octave=3, ratios=[0.5, 1.0, 2.0], strides=[8, 16, 32, 64, 128]),
        # BBOX_REG_WEIGHTS (1, 1, 1, 1) with +1 widths; BBOX_REG_BETA 0.11.
        bbox_coder=dict(type='LegacyDeltaXYWHBBoxCoder'),
        loss_bbox=dict(type='SmoothL1Loss', beta=0.11, loss_weight=1.0)),
    # Detectron RETINANET: INFERENCE_TH 0.05, PRE_NMS_TOP_N 1000 per level; TEST NMS 0.5, 100 dets.
    test_cfg=dict(nms_pre=1000, min_bbox_size=0, score_thr=0.05, nms=dict(type='nms', iou_threshold=0.5),
                  max_per_img=100))
