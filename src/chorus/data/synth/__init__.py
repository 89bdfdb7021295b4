"""Synthetic bioacoustic data: taxon groups in distinct acoustic niches, species as
parameter sets with per-call jitter, regions that change background and channel.

Entry points: :func:`generate_dataset` (wav files + manifest + ``synth.json``),
:func:`render_clip` (one clip in memory), :func:`mix_sources` (a mixture and its sources),
:func:`render_soundscape` (a long recording written block by block, with its call events).
"""

from ..errors import SynthError
from .config import HARD_SETTINGS, SynthConfig, make_config, species_label
from .dataset import generate_dataset
from .mixtures import Mixture, mix_sources
from .regions import REGIONS, Region
from .scene import CallEvent, render_clip, species_of
from .soundscape import render_soundscape
from .species import GROUPS, GroupModel

__all__ = [
    "HARD_SETTINGS", "SynthConfig", "SynthError", "make_config", "species_label", "generate_dataset", "Mixture",
    "mix_sources", "REGIONS", "Region", "CallEvent", "render_clip", "species_of", "render_soundscape",
    "GROUPS", "GroupModel",
]
