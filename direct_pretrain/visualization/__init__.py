"""Drawing: ``KeypointDetLocalVisualizer`` (VISUALIZERS). The pipeline browser behind
``dp-browse-pipeline`` is :mod:`direct_pretrain.analysis_tools.pipeline_browser`."""
from .keypoint_det_local_visualizer import KeypointDetLocalVisualizer

__all__ = ['KeypointDetLocalVisualizer']
