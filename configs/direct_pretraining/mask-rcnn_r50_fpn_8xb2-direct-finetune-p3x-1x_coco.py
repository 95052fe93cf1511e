# Fine-tune (1x) of the P3x directly pre-trained Mask R-CNN R-50-FPN: the P1x fine-tune, loading
# the 36-epoch pretrain checkpoint.
_base_ = './mask-rcnn_r50_fpn_8xb2-direct-finetune-p1x-1x_coco.py'

pretrain_config = 'configs/direct_pretraining/mask-rcnn_r50_fpn_syncbn_8xb8-direct-pretrain-448-p3x_coco.py'
load_from = 'work_dirs/mask-rcnn_r50_fpn_syncbn_8xb8-direct-pretrain-448-p3x_coco/epoch_36.pth'
