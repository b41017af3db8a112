"""`mmar-automl init` (placeholder: its issue registers the command here)."""
