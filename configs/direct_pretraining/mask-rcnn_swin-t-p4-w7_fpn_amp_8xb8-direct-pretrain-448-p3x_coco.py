# Direct pre-training P3x of Mask R-CNN Swin-T: the P1x recipe for 36 epochs (of the x4
# repeated set), constant LR throughout.
# Stage 2: mask-rcnn_swin-t-p4-w7_fpn_amp_8xb2-direct-finetune-p3x-1x_coco.py.
_base_ = './mask-rcnn_swin-t-p4-w7_fpn_amp_8xb8-direct-pretrain-448-p1x_coco.py'

train_cfg = dict(max_epochs=36)
