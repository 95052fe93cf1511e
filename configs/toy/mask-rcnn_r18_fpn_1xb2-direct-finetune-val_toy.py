# Mini reproduction, arm (a)'s finetune: the toy finetune unchanged (same training, same
# budget) plus validation after every epoch, so the arms' mAP can be plotted against the
# wall time spent. Validation uses the test stage's loader and metric (the toy val set);
# ResourceStatsHook keeps its time out of the training wall time. Arms (b) and (c) inherit this.
_base_ = './mask-rcnn_r18_fpn_1xb2-direct-finetune_toy.py'

# _delete_: the base switched validation off (None); these replace it whole.
val_cfg = dict(_delete_=True, type='ValLoop')
val_dataloader = dict(
    _delete_=True,
    batch_size=1,
    num_workers=2,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset={{_base_.test_dataloader.dataset}})
val_evaluator = dict(_delete_=True, type='CocoMetric', metric=['bbox', 'segm'],
                     ann_file={{_base_.test_evaluator.ann_file}})
train_cfg = dict(val_interval=1)
