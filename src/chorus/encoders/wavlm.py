"""WavLM (Chen et al., *WavLM: Large-Scale Self-Supervised Pre-Training for Full Stack
Speech Processing*, JSTSP 2022): wav2vec 2.0 with gated relative position bias.

``wavlm-base-plus`` uses group norm in its first convolution (equal-length batches);
``wavlm-large`` uses layer norm and takes padded batches exactly.
"""

from __future__ import annotations

from .hf_common import Entry
from .speech_ssl import SpeechFamily, register_speech_names, tiny_config_values

WAVLM = SpeechFamily(family="wavlm", model_class="WavLMModel", config_class="WavLMConfig",
                     model_types=("wavlm",))
register_speech_names(WAVLM, tiny_config_values(feat_extract_norm="layer", num_buckets=16, max_bucket_distance=32), [
    Entry("wavlm-base-plus", "microsoft/wavlm-base-plus",
          "WavLM Base+ speech SSL (94k h: Libri-Light, GigaSpeech, VoxPopuli)", 13, 94_381_936,
          "microsoft/wavlm-base-plus (MIT)"),
    Entry("wavlm-large", "microsoft/wavlm-large", "WavLM Large speech SSL (94k h)", 25, 315_453_120,
          "microsoft/wavlm-large (MIT)"),
    Entry("wavlm-tiny", None, "tiny random WavLM (layer-norm front end) for tests", 3, 36_142,
          "random (tiny test config)"),
])
