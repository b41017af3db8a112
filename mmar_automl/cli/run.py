"""`mmar-automl run` (placeholder: its issue registers the command here)."""
