"""``dp-convert-detectron`` / ``tools/convert_detectron.py``: a Detectron (Caffe2) ``.pkl`` to an
MMDetection checkpoint.

    dp-convert-detectron R-50.pkl r50_detectron.pth --arch R-50
    dp-convert-detectron model_final.pkl mask_rcnn.pth --arch auto \
        --config configs/detectron/mask-rcnn_r50-caffe_fpn_detectron-legacy-1x_coco.py --report-json

Blobs the architecture's tables do not consume (other than the known ImageNet leftovers)
and parameters no blob fills are errors unless ``--allow-unused`` / ``--allow-missing``.
The outputs are checked before anything is converted - never the input (as real paths), in a
folder that exists - and written atomically (:mod:`direct_pretrain.checkpoint.conversion_output`).
Thin wrapper over :func:`direct_pretrain.checkpoint.convert_detectron`.
"""
import argparse
import logging
import os.path as osp
import sys
import time
from typing import Optional, Tuple

from ..checkpoint import convert_detectron
from ..checkpoint.checkpoint_check import check_checkpoint_file
from ..checkpoint.conversion_output import check_conversion_outputs, report_json_path, write_conversion
from ..checkpoint.conversion_report import ConversionReport, build_target_model
from ..checkpoint.detectron.errors import DetectronConversionError
from ..errors import CheckpointCheckError, ConfigInputError, UnsafeCheckpointError

__all__ = ['parse_args', 'start_conversion', 'write_or_report', 'print_conversion_end', 'main']

#: What the converters' tools turn into one ``error:`` line and exit code 2.
INPUT_ERRORS = (ConfigInputError, CheckpointCheckError, UnsafeCheckpointError, FileNotFoundError)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Convert a Detectron .pkl into an mmdet .pth checkpoint')
    parser.add_argument('src', help='Detectron weights (.pkl, Python-2 pickle)')
    parser.add_argument('dst', help='output checkpoint (.pth)')
    parser.add_argument('--arch', default='auto',
                        help="'auto' (infer from the blobs) or a Detectron-style name: R-50, R-101, R-152, "
                        'X-101-32x8d, X-101-64x4d, X-152-32x8d-IN5k, R-50-GN, R-101-GN, '
                        '{faster_rcnn|mask_rcnn|retinanet|cascade_rcnn}_<backbone>-{FPN|C4}')
    parser.add_argument('--allow-unused', action='store_true', help='drop blobs no table consumes')
    parser.add_argument('--allow-missing', action='store_true', help='accept parameters no blob fills')
    parser.add_argument('--report-json', nargs='?', const='', default=None, metavar='PATH',
                        help='write the full mapping report as JSON (default: beside DST)')
    parser.add_argument('--config', help='mmdet config whose model the result must match key by key')
    parser.add_argument('--bn-eps', type=float, default=1e-5,
                        help='eps of the target BN layers; running_var = 1 - eps (default 1e-5)')
    parser.add_argument('--retina-ratios', type=float, nargs='+', default=[0.5, 1.0, 2.0],
                        help='anchor ratio order of the target RetinaNet config (default 0.5 1 2)')
    parser.add_argument('-v', '--verbose', action='store_true', help='log the full key table')
    return parser.parse_args(argv)


def start_conversion(args: argparse.Namespace) -> Tuple[float, Optional[str]]:
    """What both converters' tools do first: log as asked (``-v``: the key table), start the
    clock, and place the JSON report. Returns the start time and the report's path (or None)."""
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format='%(levelname)s %(message)s')
    return time.perf_counter(), report_json_path(args.dst, args.report_json)


def main(argv=None) -> int:
    args = parse_args(argv)
    start, report_path = start_conversion(args)
    try:
        check_checkpoint_file(args.src, what='Detectron weights', kind='detectron')
        check_conversion_outputs(args.src, args.dst, report_path)  # a missing output folder is an error
        target = build_target_model(args.config) if args.config else None
        state_dict, report = convert_detectron(
            args.src, args.arch, target=target, bn_eps=args.bn_eps, retina_target_ratios=args.retina_ratios,
            allow_unused=args.allow_unused, allow_missing=args.allow_missing)
    except (DetectronConversionError, ) + INPUT_ERRORS as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    meta = dict(detectron_conversion=dict(source=osp.abspath(args.src), arch=report.arch, summary=report.summary(),
                                          edits=report.edits, source_of=report.source_of))
    if not write_or_report(dict(state_dict=state_dict, meta=meta), args.dst, report, report_path):
        return 1
    elapsed = time.perf_counter() - start

    print(report.summary())
    for edit in report.edits:
        print(f'  edit: {edit}')
    for name in report.ignored_leftovers:
        print(f'  ignored leftover: {name}')
    for name, reason in report.unsupported.items():
        print(f'  unsupported (dropped): {name}: {reason}')
    print_conversion_end(report, args.dst, report_path, len(state_dict), elapsed)
    return 0


def write_or_report(checkpoint: dict, dst: str, report: ConversionReport, report_path: Optional[str]) -> bool:
    """Write the result (atomically); a failing write (a full disk) is one ``error:`` line, False."""
    try:
        write_conversion(checkpoint, dst, report, report_path)
    except OSError as error:
        print(f'error: writing {dst!r} failed ({error}); no partial file was left under that name',
              file=sys.stderr)
        return False
    return True


def print_conversion_end(report: ConversionReport, dst: str, report_path: Optional[str], num_tensors: int,
                         elapsed: float) -> None:
    """The last lines both converters print: dropped and allowed keys, the JSON report, and
    what was saved."""
    for name in report.unused_source:
        print(f'  unused (dropped): {name}')
    for key in report.missing_target + report.unexpected_target:
        print(f'  missing/unexpected (allowed): {key}')
    if report_path:
        print(f'report: {report_path}')
    print(f'saved {num_tensors} tensors to {dst} ({elapsed:.2f} s)')


if __name__ == '__main__':
    sys.exit(main())
