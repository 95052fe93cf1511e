"""Entry points as plain functions: train, test, inference and the launch they share
(argument parsing: :mod:`direct_pretrain.cli`; config preparation: :mod:`direct_pretrain.config`)."""
from .inference import infer_images
from .launch import prepare_distributed, prepare_runtime
from .testing import build_test_config, test
from .training import build_train_config, train

__all__ = ['build_test_config', 'build_train_config', 'infer_images', 'prepare_distributed', 'prepare_runtime',
           'test', 'train']
