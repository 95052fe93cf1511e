"""``dp-convert-release`` / ``tools/convert_release.py``: a checkpoint of the original
direct-pretraining release (mmdet 2.x) to an MMDetection 3.x checkpoint of this package's configs.

    python tools/convert_release.py mask_rcnn_pretrain.pth mask-rcnn_p1x_pretrained.pth
    python tools/convert_release.py swin_finetune.pth swin_p3x_finetuned.pth --arch mask-swin --report-json

The row is inferred from the keys (``--arch auto``); the result is checked key by key and
shape by shape against the model of the row's fine-tune config (also its test config), or
of ``--config``. Keys the table does not consume and target keys nothing fills are errors
unless ``--allow-unused`` / ``--allow-missing``. The outputs are checked before anything is
converted - never the input (as real paths), a folder that exists or can be created - and
written atomically (:mod:`direct_pretrain.checkpoint.conversion_output`). Without a conversion
step, configs can load the file directly: ``load_from='direct-release://<file>'``.
"""
import argparse
import os.path as osp
import sys
import time

from ..checkpoint.checkpoint_check import check_checkpoint_file
from ..checkpoint.conversion_output import check_conversion_outputs
from ..checkpoint.conversion_report import build_target_model
from ..checkpoint.release.converter import convert_release, read_release_checkpoint, release_checkpoint_dict
from ..checkpoint.release.errors import ReleaseConversionError
from ..checkpoint.release.mapping import ARCH_NAMES, describe_release_meta, infer_arch, row_for
from ..config.paths import installed_configs_dir
from .convert_detectron import INPUT_ERRORS, print_conversion_end, start_conversion, write_or_report

__all__ = ['parse_args', 'default_config', 'main']


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Convert a checkpoint of the original direct-pretraining release '
                                     '(mmdet 2.x) into an MMDetection 3.x checkpoint')
    parser.add_argument('src', help='release checkpoint (.pth, pre-trained or fine-tuned)')
    parser.add_argument('dst', help='output checkpoint (.pth)')
    parser.add_argument('--arch', default='auto', choices=('auto', ) + ARCH_NAMES,
                        help='the layout; auto infers it from the keys (default)')
    parser.add_argument('--config', help="config whose model the result must match (default: the row's fine-tune "
                        'config)')
    parser.add_argument('--no-check', action='store_true', help='do not build a model to check keys and shapes')
    parser.add_argument('--allow-unused', action='store_true', help='drop source keys the table does not consume')
    parser.add_argument('--allow-missing', action='store_true', help='accept target keys nothing fills')
    parser.add_argument('--report-json', nargs='?', const='', default=None, metavar='PATH',
                        help='write the full mapping report as JSON (default: beside DST)')
    parser.add_argument('-v', '--verbose', action='store_true', help='log the full key table')
    return parser.parse_args(argv)


def default_config(arch: str, schedule: str) -> str:
    """The installed fine-tune config of the row (``direct_pretrain/.mim/configs/...``)."""
    return osp.join(osp.dirname(installed_configs_dir()), row_for(arch, schedule).finetune_config)


def main(argv=None) -> int:
    args = parse_args(argv)
    start, report_path = start_conversion(args)
    try:
        # the one pre-check: missing, empty, truncated, not a checkpoint, unsafe (nothing executed)
        check_checkpoint_file(args.src, what='release checkpoint')
        check_conversion_outputs(args.src, args.dst, report_path, create_folders=True)
        ckpt = read_release_checkpoint(args.src)
        arch = infer_arch(ckpt.state_dict, ckpt.source).name if args.arch == 'auto' else args.arch
        target = None
        if not args.no_check:
            config = args.config or default_config(arch, describe_release_meta(ckpt.meta).schedule)
            target = build_target_model(config)
        state_dict, report = convert_release(ckpt, arch, target=target, allow_unused=args.allow_unused,
                                             allow_missing=args.allow_missing)
    except (ReleaseConversionError, ) + INPUT_ERRORS as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    if not write_or_report(release_checkpoint_dict(state_dict, report, ckpt.meta, with_sources=True), args.dst,
                           report, report_path):
        return 1
    elapsed = time.perf_counter() - start

    print(report.summary())
    if target is not None:
        print(f'  checked against {config}: {len(state_dict)} keys, shapes equal')
    for line in report.dropped:
        print(f'  dropped: {line}')
    print(f'  {len(report.edits)} PatchMerging edits, {len(report.regenerated)} relative position indices '
          'regenerated' if report.regenerated else '  all tensors copied under their mmdet 3.x names')
    print_conversion_end(report, args.dst, report_path, len(state_dict), elapsed)
    return 0


if __name__ == '__main__':
    sys.exit(main())
