"""A failure as one line (DESIGN.md section 8): the real cause of an exception, however torch, ignite
and MONAI wrapped it. Used for a job's reason, ``train``/``evaluate``'s stderr line and the errors of
components that fail while being built (a CacheDataset that meets a corrupt image)."""

from __future__ import annotations

import os
import sys


def root_cause(err: BaseException) -> BaseException:
    """ignite/MONAI may wrap a handler's exception; report the innermost one. An error raised ``from None``
    is itself the cause: its author hid the context on purpose (a KeyError behind "image has no spacing")."""
    seen = set()
    while id(err) not in seen:
        seen.add(id(err))
        inner = err.__cause__ or (None if err.__suppress_context__ else err.__context__)
        if inner is None:
            break
        err = inner
    return err


# A line of a formatted traceback that starts an exception report rather than a frame or a separator.
_NOT_EXCEPTION_LINE = ("Traceback ", "The above exception", "During handling", " ", "\t")


def failure_reason(err: BaseException) -> str:
    """One line: ``Type: first line of the message``. An error raised in a DataLoader worker reaches the
    parent as torch's wrapper ("Caught ValueError in DataLoader worker process 0. Original Traceback...")
    whose message holds the worker's traceback: the reason is the worker's own first exception (the real
    cause; MONAI's "applying transform" wrapper comes after it in a chained traceback)."""
    text = str(err)
    marker = "Original Traceback (most recent call last):"
    if marker in text:
        for line in text.split(marker, 1)[1].splitlines():
            if line.strip() and not line.startswith(_NOT_EXCEPTION_LINE):
                kind, _, message = line.partition(": ")
                where = text.split(".", 1)[0].removeprefix("Caught ").split(" ", 1)[-1]  # "in DataLoader worker process 0"
                return f"{kind}: {message.strip()} ({where})" if message else f"{kind} ({where})"
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    first = lines[0] if lines else ""
    if first.endswith(":") and len(lines) > 1:
        # a header whose substance is on the next line: torch's "Error(s) in loading state_dict for UNet:"
        # then "size mismatch for ...: copying a param with shape ..."
        first = f"{first} {lines[1][:300]}"
    return f"{type(err).__name__}: {first}" if first else type(err).__name__


def log_traceback() -> None:
    """The full traceback goes to the job's log.txt (a job's stdout) or, with --debug, to stderr;
    the console of ``mmar-automl train`` shows only the one-line reason."""
    import traceback

    if os.environ.get("MMAR_AUTOML_DEBUG"):
        traceback.print_exc(file=sys.stderr)
    elif os.environ.get("MMAR_AUTOML_RUN_MARKER"):
        traceback.print_exc(file=sys.stdout)
    sys.stdout.flush()


def print_failure(command: str, err: BaseException) -> None:
    """``evaluate failed: <one line>`` on stderr, the traceback where log_traceback puts it."""
    log_traceback()
    print(f"{command} failed: {failure_reason(root_cause(err))}", file=sys.stderr, flush=True)
