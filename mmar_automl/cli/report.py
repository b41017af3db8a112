"""`mmar-automl report` (placeholder: its issue registers the command here)."""
