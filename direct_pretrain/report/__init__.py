"""Run reports: read what mmengine logged, then write Markdown tables and PNG plots.

Importing this subpackage does not import matplotlib; the plots module is loaded when a
report is written.
"""
from .run_logs import StageLog, read_stage_log, stage_timeline
from .run_report import (METRIC_SUFFIXES, RunReport, StageSummary, format_per_class_table, format_report, per_class_ap,
                         summarize_stage, write_report)
from .tables import format_duration, markdown_table

__all__ = ['METRIC_SUFFIXES', 'RunReport', 'StageLog', 'StageSummary', 'format_duration', 'format_per_class_table',
           'format_report', 'markdown_table', 'per_class_ap', 'read_stage_log', 'stage_timeline', 'summarize_stage',
           'write_report']
