"""`mmar-automl validate` (placeholder until the search-space parser lands)."""
