"""What one report costs the server on a cache miss, in-process: `build_report` (its query and
rows, with the names/limits/run dates the server keeps per data version) and the JSON rendering,
for month reports at day granularity of random tenants over the same provider-scale LRM DB as
`bench/report_api.py`. Loading that reference data (once per data version) is timed apart.

    uv run python bench/report_build.py [--reports 200] [--seed 1]

Prints the mean milliseconds per report of each step; the last line is one JSON object
`{"build_ms", "render_ms", "total_ms", "reports"}`.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).parent))
from lrm.reporting import ReportRequest, as_json, build_report
from lrm.store import migrate
from lrm.store.db import create_engine, ensure_database
from lrm.store.embedded import EmbeddedPostgres, ServerSettings
from lrm.store.report_queries import load_reference
from report_api import load  # the same data set as the HTTP benchmark

ZONE = ZoneInfo("Europe/Berlin")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="lrm-bench-build-"))
    server = EmbeddedPostgres(folder / "pg", settings=ServerSettings(durable=False)).start()
    try:
        ensure_database(server.url(), "lrm")
        engine = create_engine(server.url("lrm"))
        migrate.upgrade(engine)
        load(engine, 200, 30, 365, 42)
        rng = random.Random(args.seed)
        months = [(date(2026, m, 1), date(2026, m + 1, 1) - timedelta(days=1))
                  for m in range(1, 10)]
        requests = [ReportRequest(kind="tenant", start=start, end=end, granularity="day",
                                  week_start="monday", tenants=(100 + rng.randint(1, 200),),
                                  group=None, items=())
                    for start, end in (rng.choice(months) for _ in range(args.reports))]
        started = time.perf_counter()
        with engine.connect() as connection:
            reference = load_reference(connection)
        reference_ms = (time.perf_counter() - started) * 1000
        build_s = render_s = 0.0
        for _ in ("warm-up", "measured"):  # the second pass is the one reported
            build_s = render_s = 0.0
            for request in requests:
                started = time.perf_counter()
                with engine.connect() as connection:
                    report = build_report(connection, request, ZONE, reference=reference)
                built = time.perf_counter()
                as_json(report)
                build_s += built - started
                render_s += time.perf_counter() - built
        engine.dispose()
    finally:
        server.destroy()
        shutil.rmtree(folder, ignore_errors=True)
    n = len(requests)
    build_ms, render_ms = build_s / n * 1000, render_s / n * 1000
    print(f"reference data (names, limits, run dates; once per data version): "
          f"{reference_ms:.1f} ms")
    print(f"{n} month reports (930 rows each): build_report {build_ms:.2f} ms, "
          f"JSON {render_ms:.2f} ms, together {build_ms + render_ms:.2f} ms a report")
    print(json.dumps({"build_ms": round(build_ms, 2), "render_ms": round(render_ms, 2),
                      "total_ms": round(build_ms + render_ms, 2),
                      "reference_ms": round(reference_ms, 1), "reports": n}))


if __name__ == "__main__":
    main()
