"""Tiny job functions for the launcher tests (real processes, no torch)."""

from __future__ import annotations

import json
import os
import sys
import time


def report(argv):
    print(json.dumps({"pid": os.getpid(), "pgid": os.getpgid(0), "sid": os.getsid(0), "cwd": os.getcwd(),
                      "argv": argv, "x": os.environ.get("PROCJOB_X")}), flush=True)
    print("to stderr", file=sys.stderr)
    return int(argv[0]) if argv else 0


def sleeper(argv):
    # A job with a child of its own (like a DataLoader worker): both must die with the group.
    child = os.fork()
    if child == 0:
        time.sleep(3600)
        os._exit(0)
    print(json.dumps({"pid": os.getpid(), "child": child}), flush=True)
    time.sleep(3600)
    return 0


def aborter(argv):
    os.abort()


def raiser(argv):
    raise ValueError("bad value on purpose")
