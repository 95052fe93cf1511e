# Direct pre-training (P1x) of Mask R-CNN R-50-FPN with the published per-GPU BN: the backbone's BN
# normalises each GPU's 8 images, as the original release did (mmdet 2.x BN, no SyncBN). This
# is the setting of the published results; the syncbn config synchronises over all 64 images.
# Keys equal the syncbn config's, so the same fine-tune config loads it (with
# --cfg-options load_from=work_dirs/<this config's name>/epoch_12.pth).
_base_ = './mask-rcnn_r50_fpn_syncbn_8xb8-direct-pretrain-448-p1x_coco.py'

model = dict(backbone=dict(norm_cfg=dict(type='BN', requires_grad=True)))
