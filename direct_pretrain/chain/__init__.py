"""The chained job: direct pretrain -> fine-tune -> test, with stage progress and an ETA."""
from .chain import (StageResult, format_results_table, run_chain, run_test_stage, run_train_stage, stage_config,
                    test_stage_args, tool_command, train_stage_args)
from .progress import StageProgress, estimate_train_cost

__all__ = ['StageProgress', 'StageResult', 'estimate_train_cost', 'format_results_table', 'run_chain',
           'run_test_stage', 'run_train_stage', 'stage_config', 'test_stage_args', 'tool_command', 'train_stage_args']
