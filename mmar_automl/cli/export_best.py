"""`mmar-automl export-best` (placeholder: its issue registers the command here)."""
