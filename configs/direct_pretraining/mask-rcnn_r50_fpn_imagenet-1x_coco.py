# Comparison: the ImageNet-initialised 1x arm, mmdet's stock config unchanged.
# It lives here so that all three arms (direct pre-training, ImageNet init, from scratch)
# run from one folder with the same tools (dist_train.sh, --amp, --auto-scale-lr).
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['direct_pretrain'], allow_failed_imports=False)

# Checkpoints and last_checkpoint are written atomically (a kill mid-write never leaves a
# partial file under its final name): the package's atomic_local file backend.
default_hooks = dict(checkpoint=dict(backend_args=dict(backend='atomic_local')))
