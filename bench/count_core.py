"""Benchmark of the pure counting core at provider scale (reproducible: seeded).

    uv run python bench/count_core.py [--sessions 1000000] [--tenants 200] [--seed 7]

One business day (Europe/Berlin, an ordinary day): 1,000,000 sessions over 200 tenants
(250 persons, 200 places and 250 DNs each), 10 seat items (7 built-in + 3 from settings),
20 bundles, 10 agent groups and 5 place groups per tenant, and 20 distinct configuration
documents in the day (membership moves and media changes). Prints the wall time per stage of
`count_day` (with --workers 2 the levels run concurrently, so a level's line is the time
from the previous mark until it finished).
"""

from __future__ import annotations

import argparse
import time
from datetime import date
from typing import Any

import numpy as np

from lrm.domain.bundles import Bundle, BundleSet
from lrm.domain.calendar import business_day
from lrm.domain.count import count_day
from lrm.domain.items import build_catalogue
from lrm.domain.sessions import SessionTable

EXTRA = [
    {"id": 20, "code": "sms_seat", "name": "SMS seat",
     "rule": {"channel": "multimedia", "media": ["sms"]}},
    {"id": 21, "code": "legacy_voice", "name": "Legacy voice",
     "rule": {"channel": "voice", "switch_type_not": ["CFGSIPSwitch"]}},
    {"id": 22, "code": "workspace_seat", "name": "Workspace seat",
     "rule": {"desktop": ["workspace"]}},
]


def build_document(rng: np.random.Generator, tenants: int) -> dict[str, Any]:
    doc: dict[str, Any] = {k: [] for k in ("tenants", "switches", "dns", "places", "persons",
                                           "agent-groups", "place-groups")}
    media_choices = ["chat", "email", "chat,email", "sms", "", "chat,sms"]
    desktops = ["workspace", "gad", "custom", "workspace"]
    for t in range(tenants):
        tid = 101 + t
        doc["tenants"].append({"DBID": tid, "name": f"T{tid}", "state": 1})
        doc["switches"].append({"DBID": 10_000 + 2 * t, "tenantDBID": tid, "type": "CFGSIPSwitch"})
        doc["switches"].append({"DBID": 10_001 + 2 * t, "tenantDBID": tid,
                                "type": "CFGNortelDMS100"})
        for i in range(250):
            doc["dns"].append({"DBID": 1_000_000 + t * 1000 + i, "tenantDBID": tid,
                               "switchDBID": 10_000 + 2 * t + (i % 5 == 0)})
            doc["persons"].append({
                "DBID": 2_000_000 + t * 1000 + i, "tenantDBID": tid, "isAgent": 2,
                "state": 1 if i % 17 else 2,
                "userProperties": {"lrm": {"media": media_choices[i % 6],
                                           "desktop": desktops[i % 4]}}})
        for i in range(200):
            doc["places"].append({"DBID": 3_000_000 + t * 1000 + i, "tenantDBID": tid,
                                  "state": 1})
        for g in range(10):
            members = [2_000_000 + t * 1000 + int(i)
                       for i in rng.choice(250, size=40, replace=False)]
            doc["agent-groups"].append({"DBID": 4_000_000 + t * 100 + g, "tenantDBID": tid,
                                        "members": members})
        for g in range(5):
            doc["place-groups"].append({"DBID": 5_000_000 + t * 100 + g, "tenantDBID": tid,
                                        "members": [3_000_000 + t * 1000 + g * 40 + i
                                                    for i in range(40)]})
    return doc


def mutate(rng: np.random.Generator, doc: dict[str, Any]) -> dict[str, Any]:
    """A new document sharing unchanged sections: 50 media changes, 20 group moves."""
    new = dict(doc)
    persons = list(doc["persons"])
    for i in rng.choice(len(persons), size=50, replace=False):
        p = dict(persons[i])
        p["userProperties"] = {"lrm": {"media": str(rng.choice(["chat", "email", "sms"])),
                                       "desktop": "workspace"}}
        persons[i] = p
    new["persons"] = persons
    groups = list(doc["agent-groups"])
    for i in rng.choice(len(groups), size=20, replace=False):
        g = dict(groups[i])
        g["members"] = list(g["members"][1:])
        groups[i] = g
    new["agent-groups"] = groups
    return new


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--tenants", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", type=int, default=2,
                        help="threads for the levels (their stage times then overlap)")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    day = business_day(date(2026, 11, 24), "Europe/Berlin")

    t0 = time.perf_counter()
    doc = build_document(rng, args.tenants)
    samples = [(day.start_ts - 600, doc)]
    for k in range(1, 20):
        doc = mutate(rng, doc)
        samples.append((day.start_ts + k * 4200, doc))

    n = args.sessions
    tenant = rng.integers(0, args.tenants, n)
    idx = rng.integers(0, 250, n)
    start = day.start_ts - 3600 + rng.integers(0, day.seconds + 3600, n)
    duration = np.minimum(rng.lognormal(np.log(1800), 1.0, n).astype(np.int64), 40_000)
    kind = rng.random(n)
    terminated = np.where(rng.random(n) < 0.01, -1, start + duration)
    person = 2_000_000 + tenant * 1000 + idx
    place = np.where(kind < 0.6, 3_000_000 + tenant * 1000 + idx % 200, -1)
    dn = np.where(kind < 0.85, 1_000_000 + tenant * 1000 + idx, -1)
    tag = np.where(kind < 0.85, 1, 2)
    sessions = SessionTable.from_columns(created=start, terminated=terminated, person=person,
                                         place=place, dn=dn, provider_tag=tag)
    catalogue = build_catalogue(EXTRA)
    seat_ids = [i.id for i in catalogue.seat_items]
    bundles = []
    for b in range(20):
        include = rng.choice(seat_ids, size=int(rng.integers(1, 4)), replace=False)
        rest = [i for i in seat_ids if i not in include]
        exclude = rng.choice(rest, size=int(rng.integers(0, 2)), replace=False)
        bundles.append(Bundle(10_001 + b, f"B{b}", "", tuple(int(i) for i in include),
                              tuple(int(i) for i in exclude)))
    bundle_set = BundleSet(10_000, "bench", "", day.date, day.date, day.date, tuple(bundles))
    print(f"input built in {time.perf_counter() - t0:.2f} s "
          f"({n:,} sessions, {args.tenants} tenants, {len(samples)} documents)")

    marks: list[tuple[str, float]] = []
    started = time.perf_counter()
    result = count_day(day, sessions, samples, catalogue, bundle_set, ["06:55-07:05"],
                       day.end_ts + 7200, workers=args.workers,
                       progress=lambda stage: marks.append((stage, time.perf_counter())))
    total = time.perf_counter() - started
    previous = started
    for stage, at in marks:
        print(f"  {stage:<12} {at - previous:6.2f} s")
        previous = at
    print(f"  {'total':<12} {total:6.2f} s")
    for level, lr in result.levels.items():
        print(f"  {level:<12} subjects={lr.subject_ids.size:5d} items={lr.item_ids.size:3d} "
              f"max peak={int(lr.daily_value.max()) if lr.daily_value.size else 0}")
    print("  counts:", result.counts)


if __name__ == "__main__":
    main()
