"""Entry points as plain functions: train, test and inference (argument parsing: ``cli``)."""
from .config_checks import ConfigInputError, final_checkpoint_name
from .inference import InferenceInputError, infer_images
from .launch import prepare_distributed
from .testing import build_test_config, test
from .training import build_train_config, train

__all__ = ['ConfigInputError', 'InferenceInputError', 'build_test_config', 'build_train_config',
           'final_checkpoint_name', 'infer_images', 'prepare_distributed', 'test', 'train']
