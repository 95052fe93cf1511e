"""Find a COCO-format dataset's train / val annotation files and image folders in one folder.

Why: a user's own dataset rarely uses COCO's names. Exports and conversions lay it out in a
handful of ways - COCO's ``annotations/instances_train2017.json`` + ``train2017/``, an
``annotations/{train,val}.json`` + ``images/{train,val}/`` tree, Roboflow's
``{train,valid}/_annotations.coco.json`` next to the images, ``train.json`` / ``val.json`` next
to one ``images/`` folder - and typing four paths into two configs is where the first run goes
wrong. Each layout here is a pattern; exactly one must match (none, or two, is one error
naming what was looked for and the flags that name the files), and the image folder is the
candidate under which the file's first ``file_name`` entries exist, so a ``file_name`` that
already carries a sub-folder resolves too. Explicit paths (``--train-ann`` ...) win over
what is found.
"""
import glob
import json
import os.path as osp
import re
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

from ..errors import ConfigInputError

__all__ = ['SplitFiles', 'DatasetFiles', 'LAYOUTS', 'find_dataset_files', 'resolve_image_folder',
           'VAL_SPLIT_NAMES']

#: Names a validation split goes by (Roboflow writes ``valid``).
VAL_SPLIT_NAMES = ('val', 'valid', 'validation')
_SAMPLE_IMAGES = 5  # file names checked when choosing an image folder


@dataclass
class SplitFiles:
    """One split: its annotation file and the folder its ``file_name`` entries are relative to."""
    ann_file: str
    img_dir: str


@dataclass
class DatasetFiles:
    """What was found (or given): the train split, the val split (None: the folder has none) and
    how they were found, for the summary line."""
    data_dir: str
    train: SplitFiles
    val: Optional[SplitFiles]
    how: str


@dataclass(frozen=True)
class _Layout:
    """A layout: how it is described, and per split name the annotation-file glob and the image
    folders to try (``{split}`` is the split name; ``{stem}`` the part of the annotation file
    name the glob's ``*`` matched together with the split name, e.g. ``train2017``)."""
    description: str
    ann_glob: str
    ann_regex: str
    img_dirs: Tuple[str, ...]


#: The layouts looked for, in the order they are listed in messages.
LAYOUTS = (
    _Layout('annotations/instances_{train,val}*.json + {train,val}*/ (COCO)', 'annotations/instances_{split}*.json',
            r'instances_(?P<stem>{split}\d*)\.json', ('{stem}', 'images/{stem}', '')),
    _Layout('annotations/person_keypoints_{train,val}*.json + {train,val}*/ (COCO keypoints)',
            'annotations/person_keypoints_{split}*.json', r'person_keypoints_(?P<stem>{split}\d*)\.json',
            ('{stem}', 'images/{stem}', '')),
    _Layout('annotations/{train,val}.json + images/{train,val}/', 'annotations/{split}.json',
            r'(?P<stem>{split})\.json', ('images/{stem}', '{stem}', 'images', '')),
    _Layout('{train,valid}/_annotations.coco.json (Roboflow)', '{split}/_annotations.coco.json',
            r'_annotations\.coco\.json', ('{split}', '')),
    _Layout('{train,val}.json + images/', '{split}.json', r'(?P<stem>{split})\.json',
            ('images', 'images/{stem}', '{stem}', '')),
)

Reader = Callable[[str], dict]


def _read_json(path: str) -> dict:
    with open(path, encoding='utf-8') as f:
        return json.load(f)


def _split_names(split: str) -> Sequence[str]:
    return VAL_SPLIT_NAMES if split == 'val' else (split, )


def _image_names(coco: dict) -> List[str]:
    return [im['file_name'] for im in (coco.get('images') or [])[:_SAMPLE_IMAGES]
            if isinstance(im, dict) and isinstance(im.get('file_name'), str)]


def resolve_image_folder(ann_file: str, candidates: Sequence[str], read: Reader) -> Optional[str]:
    """The first existing folder among ``candidates`` under which the first few images of
    ``ann_file`` exist; None when there is none."""
    names = _image_names(read(ann_file))
    for folder in dict.fromkeys(candidates):
        if osp.isdir(folder) and names and all(osp.isfile(osp.join(folder, n)) for n in names):
            return folder
    return None


def _match_layout(data_dir: str, layout: _Layout, split: str) -> List[Tuple[str, Tuple[str, ...]]]:
    """Annotation files of ``split`` in ``layout`` with their candidate image folders."""
    found = []
    for name in _split_names(split):
        for path in sorted(glob.glob(osp.join(glob.escape(data_dir), layout.ann_glob.format(split=name)))):
            match = re.fullmatch(layout.ann_regex.format(split=re.escape(name)), osp.basename(path))
            if not match or not osp.isfile(path):
                continue
            stem = match.groupdict().get('stem') or name
            found.append((path, tuple(osp.join(data_dir, d.format(split=name, stem=stem)) for d in layout.img_dirs)))
    return found


def _looked_for() -> str:
    return '; '.join(layout.description for layout in LAYOUTS)


def _explicit(path: Optional[str], data_dir: str, flag: str, want_dir: bool) -> Optional[str]:
    """An explicit path: as given when it exists (relative to the current folder), else
    relative to the dataset folder."""
    if path is None:
        return None
    for candidate in (path, osp.join(data_dir, path)):
        if (osp.isdir if want_dir else osp.isfile)(candidate):
            return osp.abspath(candidate)
    kind = 'folder' if want_dir else 'file'
    raise ConfigInputError(f'{flag} {path!r}: no such {kind} (relative paths are tried from the current folder, then '
                           f'from {data_dir}).')


def _explicit_split(ann: Optional[str], img: Optional[str], data_dir: str, split: str) -> Optional[SplitFiles]:
    if (ann is None) != (img is None):
        given, missing = (f'--{split}-ann', f'--{split}-img') if img is None else (f'--{split}-img', f'--{split}-ann')
        raise ConfigInputError(f'{given} needs {missing} as well: the annotation file and the folder its '
                               'file_name entries are relative to.')
    if ann is None:
        return None
    return SplitFiles(_explicit(ann, data_dir, f'--{split}-ann', False),
                      _explicit(img, data_dir, f'--{split}-img', True))


def _found_split(data_dir: str, split: str, read: Reader) -> Tuple[Optional[SplitFiles], List[str], Optional[str]]:
    """The one split found by the layouts: (split, every matching annotation file, layout description)."""
    matches: List[Tuple[_Layout, str, Tuple[str, ...]]] = []
    for layout in LAYOUTS:
        matches.extend((layout, path, dirs) for path, dirs in _match_layout(data_dir, layout, split))
    files = list(dict.fromkeys(path for _, path, _ in matches))
    if len(files) != 1:
        return None, files, None
    layout, path, dirs = matches[0]
    folder = resolve_image_folder(path, dirs, read)
    if folder is None:
        names = _image_names(read(path))
        first = repr(names[0]) if names else 'no image'
        raise ConfigInputError(
            f'{path}: the images it lists ({first}, ...) are in none of '
            f'{", ".join(osp.relpath(d, data_dir) + "/" for d in dict.fromkeys(dirs))} under {data_dir}; pass the '
            f'image folder with --{split}-img DIR (and --{split}-ann {osp.relpath(path)}).')
    return SplitFiles(osp.abspath(path), osp.abspath(folder)), files, layout.description


def find_dataset_files(data_dir: str, train_ann: Optional[str] = None, train_img: Optional[str] = None,
                       val_ann: Optional[str] = None, val_img: Optional[str] = None,
                       read: Optional[Reader] = None) -> DatasetFiles:
    """The train and val files of the COCO-format dataset in ``data_dir``.

    Args:
        data_dir (str): The dataset folder.
        train_ann, train_img, val_ann, val_img (str, optional): Explicit files (each annotation
            file together with its image folder); they replace what the layouts find.
        read (Callable[[str], dict], optional): Loads an annotation file (the caller's cache,
            so a large file is parsed once). Defaults to reading the JSON.

    Returns:
        DatasetFiles: ``val`` is None when the folder has no validation split.

    Raises:
        ConfigInputError: ``data_dir`` is no folder; no layout or two layouts match the train
            split, or two match the val split; the images of a found file are not where the
            layout expects them; an explicit path does not exist.
    """
    read = read or _read_json
    if not osp.isdir(data_dir):
        raise ConfigInputError(f'--data {data_dir!r} is not a folder; pass the folder of your COCO-format dataset.')
    flags = '--train-ann FILE --train-img DIR --val-ann FILE --val-img DIR'
    train = _explicit_split(train_ann, train_img, data_dir, 'train')
    val = _explicit_split(val_ann, val_img, data_dir, 'val')
    how = []
    if train is None:
        train, files, layout = _found_split(data_dir, 'train', read)
        if train is None and not files:
            raise ConfigInputError(f'no COCO-format training set found in {data_dir}: looked for {_looked_for()}; pass '
                                   f'the files with {flags}.')
        if train is None:
            raise ConfigInputError(f'{data_dir} holds {len(files)} training annotation files '
                                   f'({", ".join(osp.relpath(f, data_dir) for f in files)}); say which with {flags}.')
        how.append(f'found {layout}')
    else:
        how.append('train set given')
    if val is None:
        val, files, layout = _found_split(data_dir, 'val', read)
        if val is None and files:
            raise ConfigInputError(f'{data_dir} holds {len(files)} validation annotation files '
                                   f'({", ".join(osp.relpath(f, data_dir) for f in files)}); say which with '
                                   '--val-ann FILE --val-img DIR.')
    elif val is not None:
        how.append('val set given')
    if val is not None and osp.samefile(val.ann_file, train.ann_file):
        raise ConfigInputError(f'the train and val annotation files are the same file ({train.ann_file}); pass a '
                               'separate val set with --val-ann FILE --val-img DIR, or hold one out with '
                               '--val-split 0.1.')
    return DatasetFiles(osp.abspath(data_dir), train, val, ', '.join(how))
