"""``automl.components.controllers``."""
