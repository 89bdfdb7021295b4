"""wav2vec 2.0 (Baevski et al., *wav2vec 2.0: A Framework for Self-Supervised Learning of
Speech Representations*, NeurIPS 2020).

``wav2vec2-base`` uses group norm in its first convolution, so it is fed equal-length
batches (``pads_exactly=False``).
"""

from __future__ import annotations

from .hf_common import Entry, register_names
from .speech_ssl import SpeechFamily, register_speech_family, speech_family_loader, tiny_config_values

WAV2VEC2 = SpeechFamily(family="wav2vec2", model_class="Wav2Vec2Model", config_class="Wav2Vec2Config",
                        model_types=("wav2vec2",))
TINY = tiny_config_values(feat_extract_norm="group")

register_speech_family(WAV2VEC2)
register_names("wav2vec2", 16_000, speech_family_loader(WAV2VEC2, TINY), [
    Entry("wav2vec2-base", "facebook/wav2vec2-base", "wav2vec 2.0 Base speech SSL (LibriSpeech 960 h)", 13,
          94_371_712, "facebook/wav2vec2-base (Apache-2.0)"),
    Entry("wav2vec2-tiny", None, "tiny random wav2vec 2.0 (group-norm front end) for tests", 3, 35_706,
          "random (tiny test config)"),
])
