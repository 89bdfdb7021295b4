"""wav2vec 2.0 (Baevski et al., *wav2vec 2.0: A Framework for Self-Supervised Learning of
Speech Representations*, NeurIPS 2020).

``wav2vec2-base`` uses group norm in its first convolution, so it is fed equal-length
batches (``pads_exactly=False``).
"""

from __future__ import annotations

from .hf_common import Entry
from .speech_ssl import SpeechFamily, register_speech_names, tiny_config_values

WAV2VEC2 = SpeechFamily(family="wav2vec2", model_class="Wav2Vec2Model", config_class="Wav2Vec2Config",
                        model_types=("wav2vec2",))
register_speech_names(WAV2VEC2, tiny_config_values(feat_extract_norm="group"), [
    Entry("wav2vec2-base", "facebook/wav2vec2-base", "wav2vec 2.0 Base speech SSL (LibriSpeech 960 h)", 13,
          94_371_712, "facebook/wav2vec2-base (Apache-2.0)"),
    Entry("wav2vec2-tiny", None, "tiny random wav2vec 2.0 (group-norm front end) for tests", 3, 35_706,
          "random (tiny test config)"),
])
