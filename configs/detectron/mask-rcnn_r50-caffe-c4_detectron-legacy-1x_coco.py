# Mask R-CNN R-50-C4 with Detectron's (Caffe2) conventions, for its model-zoo weights
# (e2e_mask_rcnn_R-50-C4_1x) and for training from its ImageNet R-50.pkl.
#   test:  python tools/test.py THIS_CONFIG detectron://path/to/model_final.pkl
# Inherited: caffe-style res2-res4 body, res5 as the shared RoI head, and a mask head that
# reuses it (share_roi_extractor) with no convs before the deconv - Detectron's
# mask_rcnn_fcn_head_v0upshare.
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50-caffe-c4_1x_coco.py'
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
        shared_head=dict(init_cfg=dict(type='Pretrained', checkpoint=detectron_imagenet)),
        # C4 yaml files keep ROI_XFORM_SAMPLING_RATIO 0 (adaptive); no half-pixel offset.
        bbox_roi_extractor=dict(roi_layer=dict(type='RoIAlign', output_size=14, sampling_ratio=0, aligned=False)),
        bbox_head=dict(bbox_coder=dict(type='LegacyDeltaXYWHBBoxCoder'))),
    # Detectron C4 TEST: RPN 6000 -> 1000, NMS 0.7; SCORE_THRESH 0.05, NMS 0.5, 100 dets; masks at 0.5.
    test_cfg=dict(
        rpn=dict(nms_pre=6000, max_per_img=1000, nms=dict(type='nms', iou_threshold=0.7), min_bbox_size=0),
        rcnn=dict(score_thr=0.05, nms=dict(type='nms', iou_threshold=0.5), max_per_img=100, mask_thr_binary=0.5)))
