"""Imports every encoder family module so that each registers itself.

Family modules must not import heavy packages (transformers, torchcrepe) at module level.
"""

from __future__ import annotations

from . import toy  # noqa: F401,E402
from . import sfx_cnn  # noqa: F401,E402
from . import crepe  # noqa: F401,E402
