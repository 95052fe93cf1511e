# mmdet's default runtime, drawing keypoints and the skeleton in test --show-dir and
# tools/infer.py pictures.
_base_ = 'mmdet::_base_/default_runtime.py'
custom_imports = dict(imports=['direct_pretrain'], allow_failed_imports=False)

visualizer = dict(type='KeypointDetLocalVisualizer')
