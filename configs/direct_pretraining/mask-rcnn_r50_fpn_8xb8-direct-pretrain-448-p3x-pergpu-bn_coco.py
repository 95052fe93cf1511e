# Direct pre-training P3x of Mask R-CNN R-50-FPN with the published per-GPU BN (each GPU's 8
# images, as the original release): the P1x recipe for 36 epochs, like
# mask-rcnn_r50_fpn_syncbn_8xb8-direct-pretrain-448-p3x_coco.py. This is the setting of the
# published results. Fine-tune with mask-rcnn_r50_fpn_8xb2-direct-finetune-p3x-1x_coco.py and
# --cfg-options load_from=work_dirs/<this config's name>/epoch_36.pth.
_base_ = './mask-rcnn_r50_fpn_syncbn_8xb8-direct-pretrain-448-p1x_coco.py'

model = dict(backbone=dict(norm_cfg=dict(type='BN', requires_grad=True)))
train_cfg = dict(max_epochs=36)
