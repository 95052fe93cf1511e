from .chain import StageResult, format_results_table, run_chain
from .config_checks import ConfigInputError, final_checkpoint_name
from .launch import prepare_distributed

__all__ = ['ConfigInputError', 'StageResult', 'final_checkpoint_name', 'format_results_table',
           'prepare_distributed', 'run_chain']
