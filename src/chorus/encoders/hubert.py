"""HuBERT (Hsu et al., *HuBERT: Self-Supervised Speech Representation Learning by Masked
Prediction of Hidden Units*, TASLP 2021).

``hubert-base`` uses group norm in its first convolution (equal-length batches);
``hubert-large`` uses layer norm and takes padded batches exactly.
"""

from __future__ import annotations

from .hf_common import Entry
from .speech_ssl import SpeechFamily, register_speech_names, tiny_config_values

HUBERT = SpeechFamily(family="hubert", model_class="HubertModel", config_class="HubertConfig",
                      model_types=("hubert",))
register_speech_names(HUBERT, tiny_config_values(feat_extract_norm="group"), [
    Entry("hubert-base", "facebook/hubert-base-ls960", "HuBERT Base speech SSL (LibriSpeech 960 h)", 13,
          94_371_712, "facebook/hubert-base-ls960 (Apache-2.0)"),
    Entry("hubert-large", "facebook/hubert-large-ll60k", "HuBERT Large speech SSL (Libri-Light 60k h)", 25,
          315_438_720, "facebook/hubert-large-ll60k (Apache-2.0)"),
    Entry("hubert-tiny", None, "tiny random HuBERT (group-norm front end) for tests", 3, 35_706,
          "random (tiny test config)"),
])
