"""Clara Train's AutoML Python API (``automl.*``) for BYOC code loaded by ``path`` from an MMAR.

Clara BYOC files import ``automl.defs``, ``automl.components.controllers.controller`` and friends.
Those names live here as ``mmar_automl.clara_api.*`` and become importable as ``automl.*`` through
``install_alias()``, which ``config.automl_config.ComponentSpec.load_class`` calls before it imports a
``path`` component. Nothing named ``automl`` is ever installed into the environment, and the alias:

- is a meta-path finder that defers to a real top-level ``automl`` (e.g. an unrelated PyPI project, found
  by Python's own path finder): that one always imports as itself. A *namespace* package ``automl`` is
  no such thing: it is the MMAR's own runs folder ``<MMAR>/automl/`` (the MMAR root is on sys.path for
  BYOC code), so the alias wins over it;
- stays installed for the rest of the process once BYOC code was loaded, because Clara code may also
  import ``automl.*`` lazily inside its methods, at call time (``remove_alias()`` undoes it);
- maps each ``automl.X`` to the very module ``mmar_automl.clara_api.X`` (same objects, so
  ``isinstance`` checks agree whichever name the code used).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType

ALIAS = "automl"
TARGET = __name__  # "mmar_automl.clara_api"


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, target: str):
        self.target = target

    def create_module(self, spec) -> ModuleType:
        module = importlib.import_module(self.target)
        self.own_spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        """The target module is already executed; importlib just set its ``__spec__`` to the alias's: undo."""
        module.__spec__ = self.own_spec


class ClaraAliasFinder(importlib.abc.MetaPathFinder):
    """Finds ``automl`` and ``automl.*`` as this package's modules, unless a real ``automl`` exists."""

    def find_spec(self, fullname: str, path=None, target=None):
        if fullname != ALIAS and not fullname.startswith(ALIAS + "."):
            return None
        if fullname == ALIAS:
            real = importlib.machinery.PathFinder.find_spec(ALIAS)
            if real is not None and real.loader is not None and real.origin not in (None, "namespace"):
                return None  # a real ``automl`` package or module: it imports as itself
        else:
            parent = sys.modules.get(ALIAS)
            if parent is None or not getattr(parent, "__name__", "").startswith(TARGET):
                return None  # a real ``automl`` is imported: its submodules are its own business
        target = TARGET + fullname[len(ALIAS):]
        if importlib.util.find_spec(target) is None:
            return None
        module = importlib.import_module(target)
        return importlib.util.spec_from_loader(fullname, _AliasLoader(target),
                                               is_package=hasattr(module, "__path__"))


_FINDER = ClaraAliasFinder()


def install_alias() -> None:
    """Make Clara's ``automl.*`` importable (idempotent); a real ``automl`` package still wins."""
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)  # before the path finder, which would take <MMAR>/automl/ for it


def remove_alias() -> None:
    """Undo ``install_alias`` and forget the aliased modules (real ``automl`` modules are kept)."""
    if _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)
    for name, module in list(sys.modules.items()):
        if (name == ALIAS or name.startswith(ALIAS + ".")) and getattr(module, "__name__", "").startswith(TARGET):
            del sys.modules[name]
