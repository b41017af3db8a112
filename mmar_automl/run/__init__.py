"""The outer loop: run set-up, engine, scheduler, executor, journal, job folders, workers, packing."""
