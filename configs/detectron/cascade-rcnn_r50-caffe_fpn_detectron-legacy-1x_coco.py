# Cascade R-CNN R-50-FPN with the conventions of the Detectron-Cascade-RCNN fork (stage 2/3
# blobs suffixed _2/_3, class-agnostic regression with BBOX_REG_WEIGHTS (10,10,5,5),
# (20,20,10,10), (30,30,15,15) = target_stds below), for its weights and its R-50.pkl init.
#   test:  python tools/test.py THIS_CONFIG detectron://path/to/model_final.pkl
# Inherited from cascade_rcnn: three Shared2FC stages, test-time average of the stage scores.
_base_ = 'mmdet::cascade_rcnn/cascade-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['direct_pretrain'], allow_failed_imports=False)

detectron_imagenet = 'detectron://data/detectron/ImageNetPretrained/MSRA/R-50.pkl'


def _stage(stds):
    """One class-agnostic 2fc stage with Detectron's +1 box coding."""
    return dict(
        type='Shared2FCBBoxHead', in_channels=256, fc_out_channels=1024, roi_feat_size=7, num_classes=80,
        reg_class_agnostic=True,
        bbox_coder=dict(type='LegacyDeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.], target_stds=stds),
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
        loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0))


model = dict(
    # Detectron feeds BGR 0-255 minus PIXEL_MEANS, no std; FPN pads to 32.
    data_preprocessor=dict(mean=[102.9801, 115.9465, 122.7717], std=[1.0, 1.0, 1.0], bgr_to_rgb=False,
                           pad_size_divisor=32),
    # MSRA ResNet: stride on the 1x1; AffineChannel = frozen BN in eval mode; FREEZE_AT 2.
    backbone=dict(style='caffe', norm_cfg=dict(type='BN', requires_grad=False), norm_eval=True, frozen_stages=1,
                  init_cfg=dict(type='Pretrained', checkpoint=detectron_imagenet)),
    rpn_head=dict(
        # _delete_: mmdet's AnchorGenerator args differ from the Detectron generator's.
        anchor_generator=dict(_delete_=True, type='DetectronAnchorGenerator', scales=[8], ratios=[0.5, 1.0, 2.0],
                              strides=[4, 8, 16, 32, 64]),
        bbox_coder=dict(type='LegacyDeltaXYWHBBoxCoder')),
    roi_head=dict(
        bbox_roi_extractor=dict(roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=2, aligned=False)),
        # A list replaces the inherited one as a whole (no _delete_ needed).
        bbox_head=[_stage([0.1, 0.1, 0.2, 0.2]), _stage([0.05, 0.05, 0.1, 0.1]),
                   _stage([0.033, 0.033, 0.067, 0.067])]),
    test_cfg=dict(
        rpn=dict(nms_pre=1000, max_per_img=1000, nms=dict(type='nms', iou_threshold=0.7), min_bbox_size=0),
        rcnn=dict(score_thr=0.05, nms=dict(type='nms', iou_threshold=0.5), max_per_img=100)))
