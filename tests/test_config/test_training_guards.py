"""What the train entry point adds to a config: validated dataset_check settings, skipping
image loaders in the training pipelines only, the two guard hooks once."""
import pytest
from dp_test_utils import TOY_FINETUNE, TOY_PRETRAIN
from mmengine.config import Config

from direct_pretrain.config.training_guards import (DATASET_CHECK_DEFAULTS, add_fault_hooks, dataset_check_settings,
                                                    enable_bad_image_skipping)
from direct_pretrain.errors import ConfigInputError


@pytest.mark.parametrize('given, message', [
    (dict(min_usable_share=1.5), 'min_usable_share must be a number in'),
    (dict(max_bad_images=-1), 'max_bad_images must be an integer'),
    (dict(images='deep'), "one of ('quick', 'full', 'off')"),
    (dict(min_usable=0.2), "unknown key(s) ['min_usable']"),
])
def test_bad_settings_name_the_key(given, message):
    with pytest.raises(ConfigInputError) as info:
        dataset_check_settings(Config(dict(dataset_check=given)))
    assert message in str(info.value)


def test_settings_default_and_override():
    assert dataset_check_settings(Config({})) == DATASET_CHECK_DEFAULTS
    assert dataset_check_settings(Config(dict(dataset_check=dict(max_bad_images=None)))) == \
        dict(DATASET_CHECK_DEFAULTS, max_bad_images=None)


def test_training_loaders_skip_and_hooks_are_added_once():
    finetune, pretrain = Config.fromfile(TOY_FINETUNE), Config.fromfile(TOY_PRETRAIN)
    assert enable_bad_image_skipping(finetune) == ['train_dataloader.dataset.pipeline.0']
    assert finetune.train_dataloader.dataset.pipeline[0].type == 'LoadImageFromFileOrSkip'
    assert finetune.test_dataloader.dataset.pipeline[0].type == 'LoadImageFromFile'
    assert enable_bad_image_skipping(pretrain) == ['train_dataloader.dataset.dataset.pipeline.0']
    assert pretrain.train_dataloader.dataset.dataset.pipeline[0].on_bad_image == 'skip'
    strict = Config.fromfile(TOY_PRETRAIN)
    strict.train_dataloader.dataset.dataset.pipeline[0].on_bad_image = 'raise'
    assert enable_bad_image_skipping(strict) == []  # a config that asks for 'raise' keeps it
    for _ in range(2):
        add_fault_hooks(finetune, 3)
    types = [h['type'] for h in finetune.custom_hooks]
    assert types.count('WorkerLifetimeHook') == 1 and types.count('BadImageCountHook') == 1
    assert finetune.custom_hooks[types.index('BadImageCountHook')]['max_bad_images'] == 3
