# Keypoint R-CNN R-50-FPN (Mask R-CNN paper, section 5; Detectron's
# e2e_keypoint_rcnn_R-50-FPN): mmdet's Faster R-CNN R-50-FPN for one class (person) plus a
# keypoint branch - 8 x 512-channel 3x3 convs on 14x14 RoIAlign features (sampling ratio 2),
# a 4x4 stride-2 transposed conv to 17 heatmaps, x2 bilinear upsampling to 56x56, softmax
# cross-entropy over the 56*56 cells per keypoint. Trained on positive proposals with at
# least one labelled keypoint inside; at test time run on the final boxes.
_base_ = 'mmdet::_base_/models/faster-rcnn_r50_fpn.py'

model = dict(
    roi_head=dict(
        type='KeypointRoIHead',
        bbox_head=dict(num_classes=1),
        keypoint_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=14, sampling_ratio=2),
            out_channels=256,
            featmap_strides=[4, 8, 16, 32]),
        keypoint_head=dict(
            type='KeypointRCNNHead',
            num_keypoints=17,
            num_convs=8,
            in_channels=256,
            conv_out_channels=512,
            roi_feat_size=14,
            loss_normalizer='visible')))
