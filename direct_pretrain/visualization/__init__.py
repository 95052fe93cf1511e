"""Drawing what the pipelines produce (mmdet's visualizer does the drawing), and keypoints."""
from .keypoint_det_local_visualizer import KeypointDetLocalVisualizer
from .pipeline_browser import BrowseError, PipelineSample, browse_stage, collect_samples, grid_shape, render_grid, \
    stage_configs

__all__ = ['BrowseError', 'PipelineSample', 'browse_stage', 'collect_samples', 'grid_shape', 'render_grid',
           'stage_configs', 'KeypointDetLocalVisualizer']
