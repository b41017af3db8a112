"""Clara Train's AutoML Python API (``automl.*``) for BYOC code loaded by ``path`` from an MMAR.

Clara BYOC files import ``automl.defs``, ``automl.components.controllers.controller`` and friends.
Those names live here as ``mmar_automl.clara_api.*`` and become importable as ``automl.*`` through
``install_alias()``, which ``config.automl_config.ComponentSpec.load_class`` calls before it imports a
``path`` component. Nothing named ``automl`` is ever installed into the environment, and the alias:

- is a meta-path finder placed *last* on ``sys.meta_path``: a real top-level ``automl`` package (e.g.
  an unrelated PyPI project) is found by Python's own finders first and always imports as itself;
- stays installed for the rest of the process once BYOC code was loaded, because Clara code may also
  import ``automl.*`` lazily inside its methods, at call time (``remove_alias()`` undoes it);
- maps each ``automl.X`` to the very module ``mmar_automl.clara_api.X`` (same objects, so
  ``isinstance`` checks agree whichever name the code used).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from types import ModuleType

ALIAS = "automl"
TARGET = __name__  # "mmar_automl.clara_api"


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, target: str):
        self.target = target

    def create_module(self, spec) -> ModuleType:
        return importlib.import_module(self.target)

    def exec_module(self, module: ModuleType) -> None:
        """The target module is already executed by ``import_module``."""


class ClaraAliasFinder(importlib.abc.MetaPathFinder):
    """Finds ``automl`` and ``automl.*`` as this package's modules, only when nothing else does."""

    def find_spec(self, fullname: str, path=None, target=None):
        if fullname != ALIAS and not fullname.startswith(ALIAS + "."):
            return None
        parent = sys.modules.get(ALIAS)
        if parent is not None and not getattr(parent, "__name__", "").startswith(TARGET):
            return None  # a real ``automl`` is imported: its submodules are its own business
        real = TARGET + fullname[len(ALIAS):]
        if importlib.util.find_spec(real) is None:
            return None
        module = importlib.import_module(real)
        return importlib.util.spec_from_loader(fullname, _AliasLoader(real),
                                               is_package=hasattr(module, "__path__"))


_FINDER = ClaraAliasFinder()


def install_alias() -> None:
    """Make ``automl.*`` importable (idempotent); a real ``automl`` package still wins."""
    if _FINDER not in sys.meta_path:
        sys.meta_path.append(_FINDER)


def remove_alias() -> None:
    """Undo ``install_alias`` and forget the aliased modules (real ``automl`` modules are kept)."""
    if _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)
    for name, module in list(sys.modules.items()):
        if (name == ALIAS or name.startswith(ALIAS + ".")) and getattr(module, "__name__", "").startswith(TARGET):
            del sys.modules[name]
