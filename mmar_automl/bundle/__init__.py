"""MONAI bundles as a second kind of project (docs/bundles.md): ``is_bundle``, ``open_bundle``, ``Bundle``.

Torch-free; the job process is ``mmar_automl.bundle.job:main`` (MONAI's ConfigWorkflow plus the recorder)."""

from mmar_automl.bundle.project import Bundle, is_bundle, open_bundle

__all__ = ["Bundle", "is_bundle", "open_bundle"]
