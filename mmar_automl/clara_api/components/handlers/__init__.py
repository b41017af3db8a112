"""``automl.components.handlers``."""
