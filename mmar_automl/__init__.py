"""mmar-automl: hyperparameter search for MONAI/PyTorch MMARs, the open successor of Clara Train AutoML."""

__version__ = "0.1.0"
