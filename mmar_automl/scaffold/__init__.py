"""New MMARs: templates (init) and synthetic data."""
