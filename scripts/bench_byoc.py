"""What Clara BYOC compatibility costs the outer loop (issue 12): a table and JSON.

(a) the engine's Clara views, built for every batch and every job event whatever the handlers are:
    ``as_clara_recommendation`` per recommendation (``RECOMMENDATIONS``/``RECOMMENDATION``) and
    ``concrete_search_value`` per job event (``CONCRETE_SEARCH_VALUE``), on a Clara-sized space
    (3 enum dimensions of 4 choices with list values, 2 floats) and on a wide one (12 enums x 10 choices);
(b) importing Clara's names through the alias in a fresh interpreter (``import automl.defs`` after
    ``install_alias``), against importing mmar_automl's own modules that they are made of.

    python scripts/bench_byoc.py [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from mmar_automl.clara_api.defs import as_clara_recommendation, concrete_search_value  # noqa: E402
from mmar_automl.recommendation import Recommendation  # noqa: E402
from mmar_automl.search.space import EnumDimension, FloatDimension, SearchSpace  # noqa: E402


def _space(enums: int, choices: int) -> SearchSpace:
    dims = [EnumDimension(f"net.enum.train.model${i}:channels", f"e{i}", "net", ("channels",),
                          tuple(([8 * (c + 1), 16 * (c + 1), 32 * (c + 1)],) for c in range(choices)))
            for i in range(enums)]
    dims += [FloatDimension(f"lr.float.${i}:lr{i}", f"f{i}", "lr", (f"lr{i}",), 1e-4, 1e-2)
             for i in range(2)]
    return SearchSpace(tuple(dims))


def _recs(space: SearchSpace, n: int) -> list[Recommendation]:
    recs = []
    for k in range(n):
        point = {d.name: list(d.choices[k % len(d.choices)]) for d in space.enums}
        point.update({d.name: d.low + (d.high - d.low) * (k % 7) / 7 for d in space.continuous})
        recs.append(Recommendation(k, point))
    return recs


def _per_call_us(fn, items, repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for item in items:
            fn(item)
        best = min(best, time.perf_counter() - t0)
    return best / len(items) * 1e6


def _import_ms(code: str, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        out = subprocess.run([sys.executable, "-c", f"import time; t=time.perf_counter(); {code}; "
                              "print((time.perf_counter()-t)*1000)"], capture_output=True, text=True,
                             env={"PYTHONPATH": str(REPO)}, check=True)
        times.append(float(out.stdout.strip()))
    return sorted(times)[len(times) // 2]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    rows = []
    spaces = (("clara-sized (3x4 enums, 2 floats)", _space(3, 4)), ("wide (12x10 enums, 2 floats)", _space(12, 10)))
    for label, space in spaces:
        recs = _recs(space, 1000)
        rows.append({"what": f"as_clara_recommendation, {label}", "us_per_call":
                     round(_per_call_us(lambda r: as_clara_recommendation(r, space), recs), 1)})
        rows.append({"what": f"concrete_search_value, {label}", "us_per_call":
                     round(_per_call_us(lambda r: concrete_search_value(space, r.point), recs), 1)})
    own = _import_ms("import mmar_automl.context, mmar_automl.recommendation, mmar_automl.search.space, "
                     "mmar_automl.controllers.base, mmar_automl.handlers.base")
    alias = _import_ms("from mmar_automl.clara_api import install_alias; install_alias(); import automl.defs, "
                       "automl.components.controllers.controller, automl.components.handlers.handler, "
                       "automl.components.executors.executor")
    rows.append({"what": "import mmar_automl's own modules (fresh interpreter, median of 5)", "ms": round(own, 1)})
    rows.append({"what": "import Clara's automl.* names through the alias (same)", "ms": round(alias, 1)})
    width = max(len(r["what"]) for r in rows)
    print(f"{'measure':<{width}}  value")
    for r in rows:
        value = f"{r['us_per_call']} us/call" if "us_per_call" in r else f"{r['ms']} ms"
        print(f"{r['what']:<{width}}  {value}")
    result = {"python": sys.version.split()[0], "rows": rows}
    print(json.dumps(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
