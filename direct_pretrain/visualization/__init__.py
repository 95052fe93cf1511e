"""Drawing: ``KeypointDetLocalVisualizer`` (VISUALIZERS). The pipeline browser behind
``dp-browse-pipeline`` is :mod:`direct_pretrain.visualization.pipeline_browser`, imported by
the tool, not by ``import direct_pretrain``."""
from .keypoint_det_local_visualizer import KeypointDetLocalVisualizer

__all__ = ['KeypointDetLocalVisualizer']
