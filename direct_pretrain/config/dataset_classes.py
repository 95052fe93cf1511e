"""A COCO-format dataset's classes, in the order mmdet labels them, and its keypoint description.

Why: mmdet's ``CocoDataset`` labels category ``cat_ids[i]`` as ``i``, where ``cat_ids`` are the
file's categories *in the order the file lists them* (pycocotools' ``getCatIds`` filtered by the
configured names), while ``metainfo['classes'][i]`` is what names label ``i`` in metrics and
pictures. A ``classes`` tuple typed in any other order trains every box under another name, and
the val file must list the same categories in the same order or the evaluation maps
predictions to the wrong ids. Reading the names from the file - ids 3, 7, 11, names with spaces
or accents - removes the hand-typed tuple. For Keypoint R-CNN the categories' ``keypoints`` and
``skeleton`` give the keypoint names, the skeleton, the left/right flip pairs (by name, or
``--keypoint-flip-pairs``) and the OKS sigmas (COCO's for COCO's 17 person keypoints, a uniform
default otherwise).
"""
import logging
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from ..datasets.coco_keypoint_dataset import COCO_PERSON_KEYPOINT_META, flip_indices_from_names
from ..errors import ConfigInputError

__all__ = ['DatasetClasses', 'KeypointDescription', 'DEFAULT_OKS_SIGMA', 'read_classes', 'read_keypoints',
           'parse_flip_pairs']

logger = logging.getLogger(__name__)

#: OKS sigma of every keypoint when the names are not COCO's: the mean of COCO's 17 person
#: sigmas (0.072), i.e. a keypoint as hard to place as COCO's average one. Per-keypoint values
#: go into ``metainfo.keypoint_sigmas`` of the generated configs.
DEFAULT_OKS_SIGMA = 0.072
# A name that looks sided without saying left/right: "l_eye", "eye_r", "LEye", "r-hand".
_SIDED = re.compile(r'(^|[_\-\s.])[lLrR]($|[_\-\s.])|^[LR][A-Z]')


@dataclass
class DatasetClasses:
    """The classes of a dataset, in label order, with their category ids in the file."""
    names: Tuple[str, ...]
    ids: Tuple[int, ...]
    ann_file: str

    def describe(self) -> str:
        return ', '.join(f'{name!r} (id {cat_id})' for name, cat_id in zip(self.names, self.ids))


@dataclass
class KeypointDescription:
    """What ``CocoKeypointDataset`` metainfo needs beyond the classes."""
    names: Tuple[str, ...]
    skeleton: Tuple[Tuple[int, int], ...]  # 0-based
    flip_indices: Tuple[int, ...]
    sigmas: Tuple[float, ...]
    notes: List[str]


def _categories(coco: dict, ann_file: str) -> List[dict]:
    cats = coco.get('categories')
    if not isinstance(cats, list) or not cats:
        raise ConfigInputError(f'{ann_file}: no "categories" list; a COCO-format annotation file names its classes '
                               'there ([{"id": 1, "name": "..."}, ...]).')
    for cat in cats:
        if not isinstance(cat, dict) or not isinstance(cat.get('id'), int) or not isinstance(cat.get('name'), str):
            raise ConfigInputError(f'{ann_file}: category {cat!r} needs an integer "id" and a string "name".')
    return cats


def _duplicates(values: Sequence) -> List:
    seen, dup = set(), []
    for value in values:
        if value in seen and value not in dup:
            dup.append(value)
        seen.add(value)
    return dup


def read_classes(train: dict, train_file: str, val: Optional[dict] = None, val_file: Optional[str] = None,
                 only_ids: Optional[Sequence[int]] = None) -> DatasetClasses:
    """The classes of ``train`` in label order (the file's category order), checked against ``val``.

    Args:
        train (dict): The loaded training annotation file; ``train_file`` its path (for messages).
        val (dict, optional): The loaded validation file; ``val_file`` its path.
        only_ids (Sequence[int], optional): Keep only these category ids (in file order).

    Raises:
        ConfigInputError: no categories; a category without integer id or string name; two
            categories with one id or one name (mmdet would merge them under one label); the val
            file's categories differ from the train file's, or are listed in another order.
    """
    cats = _categories(train, train_file)
    ids, names = [c['id'] for c in cats], [c['name'] for c in cats]
    for what, values in (('id', ids), ('name', names)):
        dup = _duplicates(values)
        if dup:
            raise ConfigInputError(f'{train_file}: categories share the {what} {dup[0]!r}; mmdet would label them as '
                                   'one class. Give every category its own id and name.')
    if val is not None:
        val_cats = [(c['id'], c['name']) for c in _categories(val, val_file)]
        if val_cats != list(zip(ids, names)):
            first = next((i for i, (a, b) in enumerate(zip(val_cats, zip(ids, names))) if a != b),
                         min(len(val_cats), len(ids)))
            got = val_cats[first] if first < len(val_cats) else 'nothing'
            want = (ids[first], names[first]) if first < len(ids) else 'nothing'
            raise ConfigInputError(
                f'{val_file}: its categories differ from {train_file}\'s at position {first} ({got} instead of '
                f'{want}); mmdet maps labels to category ids by that order, so evaluation would score the wrong '
                'classes. List the same categories, in the same order, in both files.')
    keep = [(i, n) for i, n in zip(ids, names) if only_ids is None or i in set(only_ids)]
    if ids != sorted(ids):
        logger.info('%s lists its categories out of id order; mmdet labels them in the order listed, and so do '
                    'the generated configs', train_file)
    return DatasetClasses(tuple(n for _, n in keep), tuple(i for i, _ in keep), train_file)


def parse_flip_pairs(pairs: Sequence[str]) -> List[Tuple[str, str]]:
    """``--keypoint-flip-pairs left_eye:right_eye ...`` as name pairs."""
    out = []
    for pair in pairs:
        a, sep, b = pair.partition(':')
        if not sep or not a or not b:
            raise ConfigInputError(f'--keypoint-flip-pairs {pair!r}: write each pair as NAME:MIRROR, e.g. '
                                   'l_eye:r_eye.')
        out.append((a, b))
    return out


def _mirror(name: str) -> str:
    """The mirror's name as ``flip_indices_from_names`` pairs them (left -> right first)."""
    if 'left' in name:
        return name.replace('left', 'right')
    return name.replace('right', 'left') if 'right' in name else name


def _flip_indices(names: Sequence[str], pairs: Optional[Sequence[Tuple[str, str]]], ann_file: str) -> List[int]:
    hint = ('pass them as --keypoint-flip-pairs NAME:MIRROR ... (keypoints in no pair are their own mirror), or set '
            'metainfo.flip_indices in the generated configs')
    if pairs:
        index = {name: i for i, name in enumerate(names)}
        flip = list(range(len(names)))
        for a, b in pairs:
            for name in (a, b):
                if name not in index:
                    raise ConfigInputError(f'--keypoint-flip-pairs: {name!r} is not a keypoint of {ann_file} '
                                           f'({list(names)}).')
            if flip[index[a]] != index[a] or flip[index[b]] != index[b]:
                raise ConfigInputError(f'--keypoint-flip-pairs: {a!r} or {b!r} is in two pairs.')
            flip[index[a]], flip[index[b]] = index[b], index[a]
        return flip
    lowered = [n.lower() for n in names]
    if len(set(lowered)) != len(lowered):
        raise ConfigInputError(f'{ann_file}: keypoint names that differ only in case ({list(names)}) cannot be '
                               f'paired by name; {hint}.')
    unpaired = [n for n, low in zip(names, lowered) if _mirror(low) != low and _mirror(low) not in lowered]
    if unpaired:
        raise ConfigInputError(f'{ann_file}: the keypoints {unpaired} have no right/left mirror among {list(names)}, '
                               f'so the flip pairs cannot be derived; {hint}.')
    flip = flip_indices_from_names(lowered)  # left_* <-> right_*, case-insensitive
    ambiguous = [n for n in names if _SIDED.search(n)]
    if ambiguous and flip == list(range(len(names))):
        raise ConfigInputError(f'{ann_file}: the keypoints {ambiguous} look left/right-sided but are not named '
                               f'left_*/right_*, so their flip pairs cannot be derived; {hint}.')
    return flip


def read_keypoints(coco: dict, ann_file: str, flip_pairs: Optional[Sequence[Tuple[str, str]]] = None
                   ) -> Tuple[List[int], KeypointDescription]:
    """The keypoint categories' ids and their shared keypoint description.

    Raises:
        ConfigInputError: no category has ``keypoints``; two keypoint categories differ in
            them; a skeleton link is not a pair of 1-based keypoint indices; flip pairs cannot
            be derived from the names (see :func:`parse_flip_pairs`).
    """
    cats = [c for c in _categories(coco, ann_file) if c.get('keypoints')]
    if not cats:
        raise ConfigInputError(f'{ann_file}: no category lists "keypoints"; Keypoint R-CNN needs a person_keypoints-'
                               'style file (categories with "keypoints": [names] and "skeleton"); for boxes only '
                               'use another --arch.')
    names = tuple(str(n) for n in cats[0]['keypoints'])
    for cat in cats[1:]:
        if tuple(cat['keypoints']) != names:
            raise ConfigInputError(f'{ann_file}: categories {cats[0]["name"]!r} and {cat["name"]!r} list different '
                                   'keypoints; one Keypoint R-CNN head predicts one keypoint set.')
    skeleton = []
    for link in cats[0].get('skeleton') or []:
        if (not isinstance(link, (list, tuple)) or len(link) != 2
                or not all(isinstance(k, int) and 1 <= k <= len(names) for k in link)):
            raise ConfigInputError(f'{ann_file}: skeleton link {link!r} of {cats[0]["name"]!r} is not a pair of '
                                   f'1-based keypoint indices (1..{len(names)}).')
        skeleton.append((link[0] - 1, link[1] - 1))
    flip = _flip_indices(names, flip_pairs, ann_file)
    notes = []
    if names == tuple(COCO_PERSON_KEYPOINT_META['keypoint_names']):
        sigmas = tuple(COCO_PERSON_KEYPOINT_META['keypoint_sigmas'])
    else:
        sigmas = (DEFAULT_OKS_SIGMA, ) * len(names)
        notes.append(f'keypoint OKS sigmas: {DEFAULT_OKS_SIGMA} for each of the {len(names)} keypoints (the mean of '
                     "COCO's; the names are not COCO's 17); set metainfo.keypoint_sigmas in the generated configs for "
                     'per-keypoint values')
    others = [c['name'] for c in _categories(coco, ann_file) if not c.get('keypoints')]
    if others:
        notes.append(f'categories without keypoints are left out of the classes: {others}')
    pairs: Dict[int, int] = {i: j for i, j in enumerate(flip) if i < j}
    notes.append('keypoint flip pairs: ' + (', '.join(f'{names[i]}<->{names[j]}' for i, j in pairs.items())
                                            or 'none (every keypoint is its own mirror)'))
    return [c['id'] for c in cats], KeypointDescription(names, tuple(skeleton), tuple(flip), sigmas, notes)
