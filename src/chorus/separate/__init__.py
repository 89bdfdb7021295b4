"""Source separation without task-specific training.

Two routes, both documented in their modules:

- :mod:`chorus.separate.zerosep`: invert a mixture into a pre-trained text-to-audio latent
  diffusion model (AudioLDM / AudioLDM2 through diffusers) and denoise it towards a text
  prompt per source.
- :mod:`chorus.separate.priors`: diffusion priors trained on single sources, combined at
  sampling time by reconstruction guidance towards the mixture.

:mod:`chorus.separate.metrics` scores the results. diffusers is imported lazily, only by the
functions that need it.
"""

from .errors import SeparationError

__all__ = ["SeparationError"]
