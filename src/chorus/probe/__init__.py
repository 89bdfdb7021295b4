"""Layer-wise probing of frozen encoders (``chorus probe``): features of every layer from
one pass, batched linear / attention / layer-sum probes for every (layer, learning rate)
at once, selection on validation only, reports.

The package itself is callable: ``chorus.probe(encoder, data, out, ...)`` runs
:func:`chorus.probe.api.probe`. (A module attribute named like a subpackage is replaced by
the subpackage once it is imported, so the top-level API function is the package.)
"""

import sys
import types


class _CallablePackage(types.ModuleType):
    def __call__(self, *args, **kwargs):
        from .api import probe

        return probe(*args, **kwargs)

    __call__.__doc__ = "Run :func:`chorus.probe.api.probe` (what ``chorus probe`` runs)."


sys.modules[__name__].__class__ = _CallablePackage
