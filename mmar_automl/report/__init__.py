"""Reports of a run, read from its journal: terminal table, JSON document, self-contained HTML page.

``data`` loads a run into rows (light, no heavy imports); ``table``, ``document`` and ``html`` present
them; ``importance`` asks Optuna which dimensions mattered (Optuna imported only there, when called).
"""

from mmar_automl.report.data import (
    JobRow,
    RunReport,
    best_config_diff,
    config_diff,
    learning_curves,
    list_runs,
    load_report,
    resolve_run,
)

__all__ = [
    "JobRow", "RunReport", "best_config_diff", "config_diff", "learning_curves", "list_runs",
    "load_report", "resolve_run",
]
