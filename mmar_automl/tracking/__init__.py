"""Mirroring a search into MLflow from one writer: the orchestrator's background thread.

``writer`` batches and sends, ``spool`` keeps every pending write on disk, ``sync`` applies writes
idempotently (each MLflow run is found again by its uid tag), ``limits`` fits values into MLflow's
limits, ``gpu`` samples a job's own GPUs, ``uri`` picks and prepares the tracking store.
Nothing here imports mlflow at module level: the CLI must start fast.
"""
