"""Formatting shared by reports and terminal summaries: Markdown tables and durations.

Why: the chain's results, the run report and the experiments' comparisons all print
GitHub-flavoured Markdown tables; they are built here with ``terminaltables`` (an mmdet
dependency) instead of by hand in each place.
"""
from typing import Any, Optional, Sequence

from terminaltables import GithubFlavoredMarkdownTable

__all__ = ['markdown_table', 'format_duration', 'format_number']


def markdown_table(header: Sequence[Any], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table of ``header`` and ``rows`` (cells made ``str``)."""
    data = [[str(cell) for cell in header]] + [[str(cell) for cell in row] for row in rows]
    return GithubFlavoredMarkdownTable(data).table


def format_number(value: Optional[float], fmt: str) -> str:
    """``format(value, fmt)``, or an em dash for a missing value."""
    return '—' if value is None else format(value, fmt)


def format_duration(seconds: Optional[float]) -> str:
    """``1h02m03s`` / ``2m03s`` / ``4.1s``; an em dash for None."""
    if seconds is None:
        return '—'
    if seconds < 60:
        return f'{seconds:.1f}s'
    minutes, sec = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f'{hours}h{minutes:02d}m{sec:02d}s' if hours else f'{minutes}m{sec:02d}s'
