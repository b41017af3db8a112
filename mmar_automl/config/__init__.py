"""Reading an MMAR: its files, environment.json, config_automl.json and the names it may use."""
