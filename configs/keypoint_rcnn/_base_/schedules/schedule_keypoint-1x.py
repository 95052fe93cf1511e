# Detectron's Keypoint R-CNN 1x schedule (e2e_keypoint_rcnn_R-50-FPN_1x.yaml): 90k
# iterations of 16 images (8 GPUs x 2), SGD lr 0.02, x0.1 at 60k and 80k, linear warmup from
# lr / 3 over 500 iterations, weight decay 1e-4. In iterations, as Detectron and detectron2
# count it: COCO person keypoints has ~57k training images, so this "1x" is ~25 epochs.
# It carries the runtime (checkpoints and logs become per-iteration); use an InfiniteSampler
# in the train dataloader with it.
_base_ = ['mmdet::_base_/schedules/schedule_1x.py', '../default_runtime_keypoints.py']

# _delete_: an iteration loop replaces the base's EpochBasedTrainLoop (max_epochs must go).
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=90000, val_interval=10000)
param_scheduler = [
    dict(type='LinearLR', start_factor=1.0 / 3, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=90000, by_epoch=False, milestones=[60000, 80000], gamma=0.1)
]
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=1e-4))
auto_scale_lr = dict(enable=False, base_batch_size=16)

default_hooks = dict(checkpoint=dict(by_epoch=False, interval=10000))
log_processor = dict(by_epoch=False)
