"""Task-vector analysis (``chorus analyze``): geometry streamed over tensors (cosine,
sign conflicts, top-k overlap, norms, effective ranks, per layer), linear mode
connectivity, negation and spectral distances between the groups' recordings.
Definitions: docs/analysis.md."""

from .errors import AnalysisError
from .geometry import Geometry, vector_geometry
from .report import write_analysis
from .study import AnalysisSettings, analyze

__all__ = ["AnalysisError", "Geometry", "vector_geometry", "write_analysis", "AnalysisSettings", "analyze"]
