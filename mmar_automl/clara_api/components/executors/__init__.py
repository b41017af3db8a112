"""``automl.components.executors``."""
