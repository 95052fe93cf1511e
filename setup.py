"""Install with ``pip install .`` (or ``-e .``) inside an MMDetection 3.x environment.

The OpenMMLab stack itself (torch, mmcv with ops, mmengine, mmdet) is not pulled in
here: mmcv must be compiled against the installed torch. ``tools/setup_env.sh``
builds the whole pinned stack from scratch.

The configs are installed with the package under ``direct_pretrain/.mim/configs`` (a
symlink to ``configs/`` in a checkout, real files in a wheel), as mmdet ships its own, so
that ``direct_pretrain::<folder>/<config>.py`` resolves in any project.
"""
import os.path as osp

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def read_version() -> str:
    scope: dict = {}
    with open(osp.join(HERE, 'direct_pretrain', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


def read_readme() -> str:
    path = osp.join(HERE, 'README.md')
    if not osp.exists(path):
        return ''
    with open(path, encoding='utf-8') as f:
        return f.read()


CONSOLE_SCRIPTS = [
    'dp-train = direct_pretrain.cli.train:main',
    'dp-test = direct_pretrain.cli.test:main',
    'dp-chain = direct_pretrain.cli.chain:main',
    'dp-report = direct_pretrain.cli.report:main',
    'dp-infer = direct_pretrain.cli.infer:main',
    'dp-convert-detectron = direct_pretrain.cli.convert_detectron:main',
    'dp-convert-release = direct_pretrain.cli.convert_release:main',
    'dp-make-toy-coco = direct_pretrain.cli.make_toy_coco:main',
    'dp-browse-pipeline = direct_pretrain.cli.browse_pipeline:main',
    'dp-stage-cost = direct_pretrain.cli.stage_cost:main',
    'dp-gpu-check = direct_pretrain.cli.gpu_check:main',
]

setup(
    name='direct_pretrain',
    version=read_version(),
    description='Direct detection pre-training (arXiv 2106.03112) as an MMDetection 3.x plugin',
    long_description=read_readme(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['direct_pretrain', 'direct_pretrain.*']),
    package_data={'direct_pretrain': ['.mim/model-index.yml', '.mim/configs/*/*.py', '.mim/configs/*/*.md',
                                      '.mim/configs/*/_base_/*.py', '.mim/configs/*/_base_/*/*.py']},
    include_package_data=False,
    entry_points={'console_scripts': CONSOLE_SCRIPTS},
    python_requires='>=3.8',
    install_requires=['mmdet>=3.0.0,<4', 'mmengine>=0.7.1,<1', 'numpy', 'opencv-python', 'pycocotools',
                      'terminaltables'],
    extras_require=dict(
        timm=['timm'],
        tensorboard=['tensorboard'],
        tests=['pytest', 'timm', 'tensorboard'],
    ),
    license='Apache-2.0',
    zip_safe=False,
)
