"""Install with ``pip install -e .`` inside an existing MMDetection 3.x environment.

The OpenMMLab stack itself (torch, mmcv with ops, mmengine, mmdet) is not pulled in
here: mmcv must be compiled against the installed torch. ``tools/setup_env.sh``
builds the whole pinned stack from scratch.
"""
import os.path as osp

from setuptools import find_packages, setup


def read_version() -> str:
    scope: dict = {}
    with open(osp.join(osp.dirname(__file__), 'direct_pretrain', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


setup(
    name='direct_pretrain',
    version=read_version(),
    description='Direct detection pre-training (arXiv 2106.03112) as an MMDetection 3.x plugin',
    long_description=open(osp.join(osp.dirname(__file__), 'README.md')).read()
    if osp.exists(osp.join(osp.dirname(__file__), 'README.md')) else '',
    long_description_content_type='text/markdown',
    packages=find_packages(include=['direct_pretrain', 'direct_pretrain.*']),
    python_requires='>=3.8',
    install_requires=['mmdet>=3.0.0,<4', 'mmengine>=0.7.1,<1', 'numpy', 'opencv-python', 'pycocotools'],
    extras_require=dict(
        timm=['timm'],
        tensorboard=['tensorboard'],
        tests=['pytest', 'timm', 'tensorboard'],
    ),
    license='Apache-2.0',
    zip_safe=False,
)
