"""`mmar-automl sync` (placeholder: its issue registers the command here)."""
