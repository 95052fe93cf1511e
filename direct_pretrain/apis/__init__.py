from .chain import StageResult, format_results_table, run_chain
from .config_checks import ConfigInputError, final_checkpoint_name
from .inference import InferenceInputError, infer_images
from .launch import prepare_distributed
from .progress import StageProgress, estimate_train_cost
from .report import write_report
from .run_logs import ReportInputError, read_stage_log

__all__ = ['ConfigInputError', 'InferenceInputError', 'ReportInputError', 'StageProgress', 'StageResult',
           'estimate_train_cost', 'final_checkpoint_name', 'format_results_table', 'infer_images',
           'prepare_distributed', 'read_stage_log', 'run_chain', 'write_report']
