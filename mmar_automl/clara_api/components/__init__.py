"""``automl.components``: Clara's controller, handler and executor base classes."""
