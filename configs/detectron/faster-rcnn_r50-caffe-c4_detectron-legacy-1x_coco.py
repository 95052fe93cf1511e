# Faster R-CNN R-50-C4 with Detectron's (Caffe2) conventions, for its model-zoo weights
# (e2e_faster_rcnn_R-50-C4_1x) and for training from its ImageNet R-50.pkl.
#   test:  python tools/test.py THIS_CONFIG detectron://path/to/model_final.pkl
# Inherited: caffe-style ResNet res2-res4 body, res5 as the shared RoI head (stride 2 on the
# 1x1), frozen BN, 14x14 RoI features average-pooled after res5.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50-caffe_c4-1x_coco.py'
custom_imports = dict(imports=['direct_pretrain'], allow_failed_imports=False)

detectron_imagenet = 'detectron://data/detectron/ImageNetPretrained/MSRA/R-50.pkl'

model = dict(
    # Detectron feeds BGR 0-255 minus PIXEL_MEANS, no std; it pads only FPN models.
    data_preprocessor=dict(mean=[102.9801, 115.9465, 122.7717], std=[1.0, 1.0, 1.0], bgr_to_rgb=False,
                           pad_size_divisor=1),
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=detectron_imagenet)),
    rpn_head=dict(
        # _delete_: replaces mmdet's AnchorGenerator (stride 16, sizes 32-512) by Detectron's quantised one.
        anchor_generator=dict(_delete_=True, type='DetectronAnchorGenerator', scales=[2, 4, 8, 16, 32],
                              ratios=[0.5, 1.0, 2.0], strides=[16]),
        bbox_coder=dict(type='LegacyDeltaXYWHBBoxCoder')),
    roi_head=dict(
        # The C4 res5 head loads layer4.* of the same converted ImageNet file.
        shared_head=dict(init_cfg=dict(type='Pretrained', checkpoint=detectron_imagenet)),
        # Detectron C4 yaml files keep ROI_XFORM_SAMPLING_RATIO at its default 0 (adaptive);
        # only FPN configs set 2. RoIAlign without the half-pixel offset.
        bbox_roi_extractor=dict(roi_layer=dict(type='RoIAlign', output_size=14, sampling_ratio=0, aligned=False)),
        bbox_head=dict(bbox_coder=dict(type='LegacyDeltaXYWHBBoxCoder'))),
    # Detectron C4 TEST: RPN_PRE_NMS_TOP_N 6000, RPN_POST_NMS_TOP_N 1000, NMS 0.7;
    # SCORE_THRESH 0.05, NMS 0.5, 100 dets.
    test_cfg=dict(
        rpn=dict(nms_pre=6000, max_per_img=1000, nms=dict(type='nms', iou_threshold=0.7), min_bbox_size=0),
        rcnn=dict(score_thr=0.05, nms=dict(type='nms', iou_threshold=0.5), max_per_img=100)))
