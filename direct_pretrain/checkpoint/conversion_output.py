"""Where a converter's result goes: its paths checked before converting, its files written atomically.

Why: a converter reads one file and writes one or two (the checkpoint and its JSON report).
An output path equal to the input used to overwrite the input in place; an output folder that
did not exist failed only after the whole conversion, with a traceback. Both converters'
tools now check their outputs before reading anything else - not the input, compared as real
paths (a symlink to it, ``a/../a.pkl``, a hard link all count); a folder that exists and is
writable, or that can be created - and write each file under a temporary name in its folder,
renamed over the target when complete (:func:`~..runtime.atomic_save.atomic_write_bytes`):
a kill mid-write never leaves a partial file under the output name, and never touches an
existing one.
"""
import io
import os
import os.path as osp
from typing import Any, Dict, Optional

import torch

from ..errors import ConfigInputError
from ..runtime.atomic_save import atomic_write_bytes
from .conversion_report import ConversionReport
from .uri import local_checkpoint_path

__all__ = ['report_json_path', 'check_conversion_outputs', 'write_conversion']


def report_json_path(dst: str, report_json: Optional[str]) -> Optional[str]:
    """The JSON report's path: ``--report-json PATH``; ``--report-json`` alone (``''``) puts it
    beside ``dst`` as ``<dst stem>.conversion.json``; None when not asked for."""
    if report_json is None:
        return None
    return report_json or osp.splitext(dst)[0] + '.conversion.json'


def _same_file(a: str, b: str) -> bool:
    if osp.realpath(a) == osp.realpath(b):
        return True
    try:
        return osp.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return False


def _nearest_existing(folder: str) -> str:
    while not osp.exists(folder):
        folder = osp.dirname(folder)
    return folder


def _check_folder(path: str, what: str, create: bool) -> None:
    folder = osp.dirname(osp.abspath(path))
    if osp.isdir(folder):
        if not os.access(folder, os.W_OK | os.X_OK):
            raise ConfigInputError(f'{what} {path!r}: the folder {folder!r} is not writable; choose another output '
                                   'path')
        return
    if osp.exists(folder):
        raise ConfigInputError(f'{what} {path!r}: {folder!r} is a file, not a folder; choose another output path')
    if not create:
        raise ConfigInputError(f'{what} {path!r}: the folder {folder!r} does not exist; create it '
                               f'(mkdir -p {folder}) or choose another output path')
    existing = _nearest_existing(folder)
    if not osp.isdir(existing):
        raise ConfigInputError(f'{what} {path!r}: the folder {folder!r} cannot be created, {existing!r} is a file; '
                               'choose another output path')
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigInputError(f'{what} {path!r}: the folder {folder!r} cannot be created, {existing!r} is not '
                               'writable; choose another output path')


def check_conversion_outputs(source: str, dst: str, report_path: Optional[str] = None,
                             create_folders: bool = False) -> None:
    """Check, before converting, that writing the outputs can succeed and cannot destroy ``source``.

    Args:
        source (str): The converter's input (a path, or ``detectron://`` / ``direct-release://``).
        dst (str): The converted checkpoint's path.
        report_path (str, optional): The JSON report's path (:func:`report_json_path`).
        create_folders (bool): Missing output folders will be created (then checked to be
            creatable); otherwise a missing folder is an error. Defaults to False.

    Raises:
        ConfigInputError: an output is the input, the other output or a folder; or its folder
            is missing (``create_folders=False``), not writable, or cannot be created. The
            message names the path and what to do.
    """
    src = local_checkpoint_path(source) or source
    outputs = [(dst, 'output')] + ([(report_path, '--report-json')] if report_path else [])
    for path, what in outputs:
        if _same_file(path, src):
            stem = osp.splitext(osp.basename(src))[0]
            raise ConfigInputError(f'{what} {path!r} is the input file {src!r}: writing it would overwrite the input; '
                                   f'choose another path (e.g. {osp.join(osp.dirname(path), stem + "_converted.pth")})')
        if osp.isdir(path):
            raise ConfigInputError(f'{what} {path!r} is a folder; give a file name inside it')
        _check_folder(path, what, create_folders)
    if report_path and _same_file(dst, report_path):
        raise ConfigInputError(f'--report-json {report_path!r} is also the output checkpoint; give them different '
                               'paths')


def write_conversion(checkpoint: Dict[str, Any], dst: str, report: ConversionReport,
                     report_path: Optional[str] = None) -> None:
    """Write the converted checkpoint to ``dst`` (and the JSON report to ``report_path``), each
    atomically; missing folders are created."""
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    atomic_write_bytes(buffer.getbuffer(), dst)  # the serialised bytes, not a copy of them
    if report_path:
        report.to_json(report_path)
