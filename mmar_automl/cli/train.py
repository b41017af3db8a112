"""`mmar-automl train` (placeholder: its issue registers the command here)."""
