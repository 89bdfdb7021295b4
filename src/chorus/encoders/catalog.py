"""Imports every encoder family module so that each registers itself.

Family modules must not import heavy packages (transformers, torchcrepe) at module level.
"""

from __future__ import annotations

from . import sfx_cnn  # noqa: F401,E402
from . import crepe  # noqa: F401,E402
from . import toy  # noqa: F401,E402
from . import wavlm  # noqa: F401,E402
from . import hubert  # noqa: F401,E402
from . import wav2vec2  # noqa: F401,E402
from . import mert  # noqa: F401,E402
from . import audio_spectrogram_transformer  # noqa: F401,E402
from . import whisper  # noqa: F401,E402
from . import clap  # noqa: F401,E402
from . import beats  # noqa: F401,E402
from . import student_cnn  # noqa: F401,E402
from . import birdnet  # noqa: F401,E402
