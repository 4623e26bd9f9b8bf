"""Hypothesis strategies for the counting core.

A `Scenario` is a small but nasty business day: a DST day or not, a handful of persons, places,
DNs and groups, configuration documents that change during the day (media, desktop, switch
type, group membership, a person removed), and sessions drawn around "interesting" instants
(the day's edges, minute boundaries, the DST transition, the sample times) so that ties at
equal timestamps, zero-length sessions, sessions across midnight, open sessions, many sessions
on one seat and bad rows all occur often.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from hypothesis import strategies as st

from lrm.domain.bundles import Bundle, BundleSet
from lrm.domain.calendar import BusinessDay, business_day
from lrm.domain.items import Catalogue, build_catalogue
from lrm.domain.sessions import SessionTable

ZONES = ("UTC", "Europe/Berlin", "America/New_York")
DATES = (date(2026, 3, 29), date(2026, 10, 25), date(2026, 3, 8), date(2026, 11, 1),
         date(2026, 6, 15))
TENANTS = (101, 102)
PERSONS = (1001, 1002, 1003, 1004, 1005)
PLACES = (3001, 3002, 3003)
DNS = (4001, 4002, 4003, 4004, 4005)
SWITCHES = {501: "CFGSIPSwitch", 502: "CFGNortelDMS100", 503: "cfgsipswitch "}
MEDIA = ("chat", "email", "sms", "Chat")
DESKTOPS = ("workspace", "gad", "custom", "Workspace ", None)
WINDOWS = ([], ["02:00-03:00"], ["02:30-02:40", "23:50-24:00"], ["22:00-01:00"],
           ["00:00-24:00"], ["09:59-10:01"])
EXTRA_ITEMS = (
    {"id": 50, "code": "sms_for_102", "name": "SMS seats of tenant 102",
     "rule": {"media": ["sms"], "tenant": [102]}},
    {"id": 51, "code": "legacy_voice", "name": "Voice on non-SIP switches",
     "rule": {"channel": "voice", "switch_type_not": ["CFGSIPSwitch"]}},
    {"id": 52, "code": "no_chat", "name": "Seats without chat",
     "rule": {"media_not": ["chat"]}},
    {"id": 53, "code": "custom_desktop", "name": "Custom desktop",
     "rule": {"desktop": "custom", "channel_not": "voice"}},
)


@dataclass(frozen=True)
class Scenario:
    day: BusinessDay
    sessions: SessionTable
    samples: list[tuple[int, dict[str, Any]]]
    catalogue: Catalogue
    bundle_set: BundleSet | None
    windows: list[str]
    now_ts: int


def _person(draw: st.DrawFn, dbid: int) -> dict[str, Any]:
    lrm: dict[str, Any] = {}
    media = draw(st.lists(st.sampled_from(MEDIA), max_size=3))
    if media or draw(st.booleans()):
        lrm["media"] = ",".join(media)
    desktop = draw(st.sampled_from(DESKTOPS))
    if desktop is not None:
        lrm["desktop"] = desktop
    return {"DBID": dbid, "tenantDBID": draw(st.sampled_from(TENANTS)), "userName": f"p{dbid}",
            "isAgent": draw(st.sampled_from([2, 2, 1])), "state": draw(st.sampled_from([1, 1, 2])),
            "userProperties": {"lrm": lrm}}


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    """One configuration document over the fixed small id space (some ids left out)."""
    persons = [_person(draw, p) for p in PERSONS if draw(st.integers(0, 5)) > 0]
    dns = [{"DBID": d, "tenantDBID": draw(st.sampled_from(TENANTS)),
            "switchDBID": draw(st.sampled_from([*SWITCHES, 599])), "number": str(d),
            "type": "CFGExtension", "state": 1}
           for d in DNS if draw(st.integers(0, 5)) > 0]
    places = [{"DBID": p, "tenantDBID": draw(st.sampled_from(TENANTS)), "name": f"pl{p}",
               "DNs": [], "state": draw(st.sampled_from([1, 1, 2]))}
              for p in PLACES if draw(st.integers(0, 5)) > 0]
    return {
        "tenants": [{"DBID": t, "name": f"T{t}", "state": 1} for t in TENANTS],
        "switches": [{"DBID": s, "tenantDBID": 101, "name": f"sw{s}", "type": typ, "state": 1}
                     for s, typ in SWITCHES.items()],
        "dns": dns, "places": places, "persons": persons,
        "agent-groups": [{"DBID": g, "tenantDBID": 101, "name": f"AG{g}",
                          "members": draw(st.lists(st.sampled_from(PERSONS), max_size=3,
                                                   unique=True))} for g in (7001, 7002)],
        "place-groups": [{"DBID": g, "tenantDBID": 101, "name": f"PG{g}",
                          "members": draw(st.lists(st.sampled_from(PLACES), max_size=2,
                                                   unique=True))} for g in (8001, 8002)],
    }


@st.composite
def changed(draw: st.DrawFn, doc: dict[str, Any]) -> dict[str, Any]:
    """A copy of `doc` with one to three mid-day changes."""
    new = copy.deepcopy(doc)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["media", "desktop", "switch", "agent_group", "place_group",
                                     "remove_person", "enable"]))
        if kind in ("media", "desktop", "remove_person", "enable") and new["persons"]:
            p = draw(st.sampled_from(new["persons"]))
            if kind == "media":
                p["userProperties"]["lrm"]["media"] = ",".join(
                    draw(st.lists(st.sampled_from(MEDIA), max_size=3)))
            elif kind == "desktop":
                p["userProperties"]["lrm"]["desktop"] = draw(st.sampled_from(DESKTOPS[:-1]))
            elif kind == "enable":
                p["state"] = 3 - p["state"]
            else:
                new["persons"].remove(p)
        elif kind == "switch" and new["dns"]:
            d = draw(st.sampled_from(new["dns"]))
            d["switchDBID"] = draw(st.sampled_from(list(SWITCHES)))
        elif kind == "agent_group":
            g = draw(st.sampled_from(new["agent-groups"]))
            g["members"] = draw(st.lists(st.sampled_from(PERSONS), max_size=3, unique=True))
        elif kind == "place_group":
            g = draw(st.sampled_from(new["place-groups"]))
            g["members"] = draw(st.lists(st.sampled_from(PLACES), max_size=2, unique=True))
    return new


def _instants(day: BusinessDay, extra: list[int]) -> list[int]:
    s, e = day.start_ts, day.end_ts
    mid = s + 10 * 3600
    points = [s - 3600, s - 1, s, s + 1, s + 59, s + 60, s + 61, mid - 1, mid, mid + 1,
              mid + 30, mid + 59, mid + 60, mid + 3600, e - 61, e - 60, e - 1, e, e + 1]
    # The DST transition instant of the day, when there is one (offset change).
    for h in range((e - s) // 3600):
        a, b = s + h * 3600, s + (h + 1) * 3600
        if _offset(day, a) != _offset(day, b):
            points += [b - 1, b, b + 1, b + 1800]
            break
    return points + extra


def _offset(day: BusinessDay, ts: int) -> int:
    local = datetime.fromtimestamp(ts, day.tzinfo)
    offset = local.utcoffset()
    assert offset is not None
    return int(offset.total_seconds())


@st.composite
def scenarios(draw: st.DrawFn, *, max_sessions: int = 10, with_bad_rows: bool = True,
              with_changes: bool = True) -> Scenario:
    day = business_day(draw(st.sampled_from(DATES)), draw(st.sampled_from(ZONES)))
    base = draw(documents())
    first_ts = draw(st.sampled_from([day.start_ts - 86400, day.start_ts - 600, day.start_ts,
                                     day.start_ts + 1800]))
    samples: list[tuple[int, dict[str, Any]]] = [(first_ts, base)]
    if with_changes:
        doc = base
        for _ in range(draw(st.integers(0, 2))):
            doc = draw(changed(doc))
            ts = draw(st.sampled_from([day.start_ts + 9 * 3600, day.start_ts + 10 * 3600 + 30,
                                       day.start_ts + 15 * 3600, day.start_ts + 600,
                                       day.end_ts - 600, day.start_ts + 10 * 3600]))
            samples.append((ts, doc))
    instants = _instants(day, [ts for ts, _ in samples])
    durations = [0, 0, 1, 30, 59, 60, 61, 600, 3599, 3600, 7200, 20000, 86400, -1, -1]
    rows: dict[str, list[int]] = {k: [] for k in ("created", "terminated", "person", "place",
                                                  "dn", "provider_tag")}
    for _ in range(draw(st.integers(0, max_sessions))):
        created = draw(st.sampled_from(instants)) + draw(st.sampled_from([0, 0, 0, 1, -1, 17]))
        duration = draw(st.sampled_from(durations))
        if duration == -1:
            terminated = -1
        else:
            terminated = created + duration
            if with_bad_rows and draw(st.integers(0, 15)) == 0:
                terminated = created - 5
        rows["created"].append(created)
        rows["terminated"].append(terminated)
        rows["person"].append(draw(st.sampled_from([*PERSONS, -1, 9999])))
        rows["place"].append(draw(st.sampled_from([*PLACES, -1, -1, -1, 9998])))
        rows["dn"].append(draw(st.sampled_from([*DNS, -1, 0, 9997])))
        rows["provider_tag"].append(draw(st.sampled_from([1, 1, 2, 2, 0, 3])))
    sessions = SessionTable.from_columns(**rows)
    extra = draw(st.lists(st.sampled_from(EXTRA_ITEMS), max_size=2, unique_by=lambda e: e["id"]))
    catalogue = build_catalogue(extra)
    seat_ids = [i.id for i in catalogue.seat_items]
    bundles = []
    for n in range(draw(st.integers(0, 3))):
        include = draw(st.lists(st.sampled_from(seat_ids), min_size=1, max_size=3, unique=True))
        rest = [i for i in seat_ids if i not in include]
        exclude = draw(st.lists(st.sampled_from(rest), max_size=2, unique=True))
        bundles.append(Bundle(10001 + n, f"B{n}", "", tuple(sorted(include)),
                              tuple(sorted(exclude))))
    bundle_set = (BundleSet(10000, "set", "", day.date, day.date, day.date, tuple(bundles))
                  if bundles else None)
    windows = draw(st.sampled_from(WINDOWS))
    now_ts = draw(st.sampled_from([day.end_ts + 7200, day.start_ts + 12 * 3600]))
    return Scenario(day, sessions, samples, catalogue, bundle_set, list(windows), now_ts)


# --------------------------------------------------------------------------- hand-made inputs
def local_ts(day: BusinessDay, hhmmss: str, *, fold: int = 0) -> int:
    """Epoch seconds of a local wall-clock time on `day` ("10:44" or "10:44:30"); `fold=1`
    picks the second occurrence in a repeated hour."""
    parts = [int(p) for p in hhmmss.split(":")]
    h, m, s = [*parts, 0, 0][:3]
    local = datetime(day.date.year, day.date.month, day.date.day, h, m, s,
                     tzinfo=day.tzinfo, fold=fold)
    return int(local.timestamp())


def person(dbid: int, tenant: int = 101, *, media: str | None = None,
           desktop: str | None = None, is_agent: int = 2, state: int = 1) -> dict[str, Any]:
    lrm: dict[str, Any] = {}
    if media is not None:
        lrm["media"] = media
    if desktop is not None:
        lrm["desktop"] = desktop
    return {"DBID": dbid, "tenantDBID": tenant, "userName": f"p{dbid}", "isAgent": is_agent,
            "state": state, "userProperties": {"lrm": lrm}}


def document(*, tenants: tuple[int, ...] = (101,), persons: list[dict[str, Any]] | None = None,
             places: dict[int, int] | None = None, dns: dict[int, tuple[int, int]] | None = None,
             switches: dict[int, str] | None = None,
             agent_groups: dict[int, list[int]] | None = None,
             place_groups: dict[int, list[int]] | None = None) -> dict[str, Any]:
    """A configuration document: places {DBID: tenant}, dns {DBID: (tenant, switch)},
    switches {DBID: type}, groups {DBID: members}."""
    return {
        "tenants": [{"DBID": t, "name": f"T{t}", "state": 1} for t in tenants],
        "switches": [{"DBID": s, "tenantDBID": tenants[0], "name": f"sw{s}", "type": t,
                      "state": 1} for s, t in (switches or {}).items()],
        "dns": [{"DBID": d, "tenantDBID": t, "switchDBID": s, "number": str(d),
                 "type": "CFGExtension", "state": 1} for d, (t, s) in (dns or {}).items()],
        "places": [{"DBID": p, "tenantDBID": t, "name": f"pl{p}", "DNs": [], "state": 1}
                   for p, t in (places or {}).items()],
        "persons": persons or [],
        "agent-groups": [{"DBID": g, "tenantDBID": tenants[0], "name": f"AG{g}", "members": m}
                         for g, m in (agent_groups or {}).items()],
        "place-groups": [{"DBID": g, "tenantDBID": tenants[0], "name": f"PG{g}", "members": m}
                         for g, m in (place_groups or {}).items()],
    }


def session_table(*rows: tuple[int, int, int, int, int, int]) -> SessionTable:
    """Sessions from (created, terminated, person, place, dn, provider_tag) tuples."""
    columns = list(zip(*rows, strict=True)) if rows else [()] * 6
    return SessionTable.from_columns(created=list(columns[0]), terminated=list(columns[1]),
                                     person=list(columns[2]), place=list(columns[3]),
                                     dn=list(columns[4]), provider_tag=list(columns[5]))
