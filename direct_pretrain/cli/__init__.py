"""Command-line front ends: argument parsing only, over :mod:`direct_pretrain.apis` & co.

Why here and not only in ``tools/``: console scripts (``dp-train``, ``dp-test``,
``dp-chain``, ``dp-report``, ``dp-infer``, ``dp-convert-detectron``, ...) must point at
importable modules of the installed package, and the chain runs its stages as
``python -m direct_pretrain.cli.train`` from any directory. ``tools/*.py`` in a checkout
are three-line wrappers over these ``main`` functions, like mmdet's own tools.
Every tool reports bad input as one ``error: ...`` line on stderr and exits with 2.
"""
