"""``dp-report`` / ``tools/report.py``: the run report (Markdown tables + PNG plots) from work dirs.

``dp-report WORK_DIR [WORK_DIR ...] --out DIR [--names pretrain finetune]``

Give the stages' work dirs in training order (e.g. the pretrain's, then the finetune's);
the last one is expected to hold ``test_metrics.json`` (``tools/test.py --metrics-out``).
"""
import argparse
import logging
import sys
from typing import List, Optional

from ..errors import ReportInputError
from ..report import format_duration, write_report

__all__ = ['main']


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('work_dirs', nargs='+', metavar='WORK_DIR', help='stage work dirs, in training order')
    parser.add_argument('--out', required=True, help='folder for report.md, report.json and the PNG plots')
    parser.add_argument('--names', nargs='+', help='stage names, one per work dir (default: the dir names)')
    parser.add_argument('--title', default='Run report', help='report title')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='[report] %(message)s')
    try:
        report = write_report(args.work_dirs, args.out, args.names, args.title)
    except ReportInputError as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    for stage in report.stages:
        print(f'{stage.name}: {stage.iterations} iterations, {format_duration(stage.wall_s)}, '
              f'final loss {stage.final_losses.get("loss", float("nan")):.4f}')
    print(f'report: {report.files["markdown"]}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
