"""Benchmarks and diagnostics behind ``dp-gpu-check``, ``dp-stage-cost`` and ``dp-browse-pipeline``
(mmdet keeps its own in ``tools/analysis_tools/``).

* :mod:`.gpu_check` - the one-run GPU check (environment, correctness, throughput, a short
  toy chain through the chain's stage runners), with :mod:`.op_checks` (CUDA kernels against
  CPU references) and :mod:`.train_throughput` (images/s and peak memory per precision);
* :mod:`.stage_cost` - FLOPs and seconds per image of a training step of each stage;
* :mod:`.pipeline_browser` - what a stage's train pipeline feeds the model, as a PNG grid.

The submodules are not imported here: each tool imports the one it runs, so
``dp-browse-pipeline`` does not load the GPU check. This file also makes the folder a regular
package, which ``find_packages`` needs to put it into a wheel.
"""

__all__ = ['gpu_check', 'op_checks', 'pipeline_browser', 'stage_cost', 'train_throughput']
