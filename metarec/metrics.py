"""Convenience alias: `metarec.metrics` is `metarec.core.metrics`."""

from metarec.core.metrics import *  # noqa: F401,F403
from metarec.core.metrics import __all__  # noqa: F401
