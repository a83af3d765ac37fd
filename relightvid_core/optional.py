"""Optional packages, imported by the feature that needs them: a missing one disables that feature, not the library.

OpenCV ships as several interchangeable wheels (``opencv-python``, ``opencv-python-headless``, the contrib
builds); two of them in one environment overwrite each other's ``cv2`` and break it for every package there,
so we depend on none and use whichever one is installed.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingDependencyError

# import name → what to install, as the end of the sentence "<feature> needs …".
INSTALL_HINTS = {
    "cv2": (
        "OpenCV (the cv2 module), which is not importable here: install one OpenCV wheel such as "
        "`pip install opencv-python-headless`, or keep the opencv-python another package brought, never both"
    ),
    "av": "PyAV, which is not importable here: `pip install av`",
    # Ray is an optional extra of this package; its Data library brings pyarrow and pandas along.
    "ray.data": 'Ray with Ray Data, which is not importable here: `pip install "relightvid[ray]"`',
}


def require(module: str, feature: str) -> ModuleType:
    """Import ``module`` for ``feature`` (a noun phrase such as "reading .hdr maps").

    Raises:
        MissingDependencyError: the module cannot be imported; one sentence names the feature and what to install.
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingDependencyError(f"{feature[:1].upper()}{feature[1:]} needs {INSTALL_HINTS[module]}.") from error


def missing(module: str, feature: str) -> str | None:
    """The sentence :func:`require` would raise for ``feature``, or None when ``module`` imports."""
    try:
        require(module, feature)
    except MissingDependencyError as error:
        return str(error)
    return None
