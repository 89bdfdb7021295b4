"""``chorus predict``: a classifier over long recordings in sliding windows, streamed in
bounded memory, batched across files, resumable, on a local pool or Ray."""

from .errors import OutputCollision, ThresholdFileError
from .detect import class_thresholds, detections, read_thresholds
from .outputs import FORMATS
from .recordings import FailedRecording, PredictReport, find_recordings, output_paths, predict
from .scheduler import RecordingScores, score_recordings
from .settings import DEFAULT_WINDOW, PredictSettings
from .stream import AudioWindow, WindowSpec, stream_windows

__all__ = [
    "ThresholdFileError", "class_thresholds", "detections", "read_thresholds", "FORMATS", "FailedRecording", "OutputCollision", "PredictReport", "find_recordings",
    "output_paths", "predict", "RecordingScores", "score_recordings", "DEFAULT_WINDOW", "PredictSettings",
    "AudioWindow", "WindowSpec", "stream_windows",
]
