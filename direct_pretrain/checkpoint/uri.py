"""What a checkpoint argument names: the one parser of ``detectron://``, ``direct-release://`` and paths.

Why: a checkpoint reaches the package as ``load_from``, ``--resume``, the test tool's argument,
``dp-infer``'s or a converter's input; each needs the same answers - is it a local file, which
reader does it need, which file is it - and each answered them with its own ``'://'`` test
before this module.
"""
import os.path as osp
from typing import NamedTuple, Optional

__all__ = ['DETECTRON_PREFIX', 'RELEASE_PREFIX', 'LOCAL_SCHEMES', 'CheckpointURI', 'parse_checkpoint_uri',
           'local_checkpoint_path']

DETECTRON_PREFIX = 'detectron://'
RELEASE_PREFIX = 'direct-release://'
#: The package's schemes for local files: a Detectron pickle, a file of the original release.
LOCAL_SCHEMES = (DETECTRON_PREFIX, RELEASE_PREFIX)


class CheckpointURI(NamedTuple):
    """A parsed checkpoint argument.

    Attributes:
        uri (str): As given.
        scheme (str): ``'detectron'``, ``'direct-release'``, ``'file'`` (a plain path) or
            ``'remote'`` (``http://``, ``s3://``, ``open-mmlab://``... fetched by mmengine).
        path (str | None): The local file (user folder expanded); None when remote.
    """
    uri: str
    scheme: str
    path: Optional[str]

    @property
    def is_local(self) -> bool:
        return self.path is not None


def parse_checkpoint_uri(uri: str) -> CheckpointURI:
    """Split a checkpoint argument into its scheme and local file."""
    for prefix in LOCAL_SCHEMES:
        if uri.startswith(prefix):
            return CheckpointURI(uri, prefix[:-len('://')], osp.expanduser(uri[len(prefix):]))
    if '://' in uri:
        return CheckpointURI(uri, 'remote', None)
    return CheckpointURI(uri, 'file', osp.expanduser(uri))


def local_checkpoint_path(uri: str) -> Optional[str]:
    """The local file behind a checkpoint argument, or None for schemes mmengine fetches."""
    return parse_checkpoint_uri(uri).path
