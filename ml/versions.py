"""The library versions recorded with a model and required to load it."""

from __future__ import annotations

import platform

import joblib
import numpy as np
import pandas as pd
import scipy
import sklearn


def library_versions() -> dict[str, str]:
    """Return the versions that must match for a model to be loaded."""
    return {
        "python": ".".join(platform.python_version_tuple()[:2]),
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "joblib": joblib.__version__,
        "pandas": pd.__version__,
    }
