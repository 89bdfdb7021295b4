"""Imports every merge method once, for its registration (one import line each)."""

from . import mean  # noqa: F401
from . import task_arithmetic  # noqa: F401
from . import ties  # noqa: F401
from . import dare  # noqa: F401
from . import breadcrumbs  # noqa: F401
from . import tsv  # noqa: F401
from . import iso_c  # noqa: F401
from . import negation  # noqa: F401
from . import iso_cts  # noqa: F401
from . import model_stock  # noqa: F401
from . import della  # noqa: F401
from . import slerp  # noqa: F401
from . import karcher  # noqa: F401
from . import wudi  # noqa: F401
from . import regmean  # noqa: F401
from . import regmean_pp  # noqa: F401
