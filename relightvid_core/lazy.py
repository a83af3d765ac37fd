"""Package attributes imported on first use (PEP 562), so ``import relightvid_core`` stays cheap.

The networks, schedulers and text encoders pull in diffusers and transformers, which cost seconds; a
package that re-exported them eagerly would charge that to every user, from ``relightvid --help`` to
ComfyUI's start-up, whether the feature runs or not.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A module ``__getattr__`` and ``__dir__`` for ``package`` that import ``exports[name]`` (a submodule
    relative to ``package``) the first time ``name`` is read, then keep the value as a plain attribute."""
    namespace = importlib.import_module(package).__dict__

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name], package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *exports})

    return __getattr__, __dir__
