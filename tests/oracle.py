"""A brute-force oracle for the count, written as plainly as possible.

It walks every second of the business day, asks which sessions are active at that second, looks
their attributes up in the configuration document in force at that second with plain dict
searches, builds sets of seats, and keeps the per-minute maximum. It shares no code with
`lrm.domain` beyond the input types (it evaluates rules from their raw dicts). Small inputs
only: a day is 82,800 to 90,000 seconds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from lrm.domain.bundles import BundleSet
from lrm.domain.calendar import BusinessDay
from lrm.domain.items import Catalogue
from lrm.domain.sessions import SessionTable

Doc = Mapping[str, Any]


@dataclass
class OracleResult:
    minute: dict[tuple[str, int, int], list[int]] = field(default_factory=dict)
    daily: dict[tuple[str, int, int], tuple[int, int]] = field(default_factory=dict)
    enabled: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    subjects: dict[str, list[int]] = field(default_factory=dict)
    items: dict[str, list[int]] = field(default_factory=dict)
    excluded: list[bool] = field(default_factory=list)


def norm(text: object) -> str:
    return str(text).strip().casefold()


def find(doc: Doc, section: str, dbid: int) -> Mapping[str, Any] | None:
    """The object with this DBID in a section (the last one if repeated)."""
    found = None
    for obj in doc.get(section, []):
        if obj.get("DBID") == dbid:
            found = obj
    return found


def excluded_minutes(day: BusinessDay, windows: Sequence[str]) -> list[bool]:
    zone = ZoneInfo(day.zone)
    spans = []
    for w in windows:
        a, b = w.split("-")
        start = int(a[:2]) * 60 + int(a[3:5])
        end = int(b[:2]) * 60 + int(b[3:5])
        spans.append((start, end))
    out = []
    for m in range(day.minutes):
        local = datetime.fromtimestamp(day.start_ts + 60 * m, zone)
        hm = local.hour * 60 + local.minute
        hit = False
        for start, end in spans:
            if start < end and start <= hm < end:
                hit = True
            if start > end and (hm >= start or hm < end):
                hit = True
        out.append(hit)
    return out


def daily_of(values: list[int], excluded: list[bool]) -> tuple[int, int]:
    best, at = -1, -1
    for m, v in enumerate(values):
        if not excluded[m] and v >= best:
            best, at = v, m
    if best < 0:
        return 0, -1
    return best, at


def rule_holds(rule: Mapping[str, Any], attrs: Mapping[str, Any]) -> bool:
    for key, raw in rule.items():
        negate = key.endswith("_not")
        attr = key[:-4] if negate else key
        values = raw if isinstance(raw, list) else [raw]
        if attr == "tenant":
            hit = attrs["tenant"] in values
        elif attr == "media":
            hit = any(norm(v) in attrs["media"] for v in values)
        else:
            hit = attrs[attr] in [norm(v) for v in values]
        if hit == negate:
            return False
    return True


def oracle_count(day: BusinessDay, sessions: SessionTable,
                 samples: Sequence[tuple[int, Doc]], catalogue: Catalogue,
                 bundle_set: BundleSet | None, windows: Sequence[str], now_ts: int,
                 tolerance: int = 300) -> OracleResult:
    result = OracleResult()
    # Only changes matter: a sample replaces an earlier one taken at the same second, and a
    # sample equal to the one before it is not a change.
    by_time: dict[int, Doc] = {}
    for ts, doc in sorted(samples, key=lambda s: s[0]):
        by_time[ts] = doc
    samples = []
    for ts in sorted(by_time):
        if not samples or samples[-1][1] != by_time[ts]:
            samples.append((ts, by_time[ts]))

    def doc_index_at(t: int) -> int:
        k = 0
        for i, (ts, _) in enumerate(samples):
            if ts <= t:
                k = i
        return k

    def doc_at(t: int) -> Doc:
        return samples[doc_index_at(t)][1]

    rows = [tuple(int(x) for x in r) for r in zip(
        sessions.created.tolist(), sessions.terminated.tolist(), sessions.person.tolist(),
        sessions.place.tolist(), sessions.dn.tolist(), sessions.provider_tag.tolist(),
        strict=True)]

    counts = dict.fromkeys(("end_before_start", "start_in_future", "unknown_tenant", "counted",
                            "unknown_reference", "open", "zero_length", "outside_day",
                            "unknown_channel"), 0)
    counts["sessions"] = len(rows)
    valid: list[dict[str, Any]] = []
    for i, (created, terminated, person, place, dn, tag) in enumerate(rows):
        if terminated != -1 and terminated < created:
            counts["end_before_start"] += 1
            continue
        if created > now_ts + tolerance:
            counts["start_in_future"] += 1
            continue
        tenant = -1
        unknown_ref = False
        if samples:
            login = doc_at(created)
            p = find(login, "persons", person) if person > 0 else None
            pl = find(login, "places", place) if place > 0 else None
            d = find(login, "dns", dn) if dn > 0 else None
            for obj in (p, pl, d):
                if obj is not None and tenant < 0 and obj.get("tenantDBID", -1) > 0:
                    tenant = obj["tenantDBID"]
            unknown_ref = ((person > 0 and p is None) or (place > 0 and pl is None)
                           or (dn > 0 and d is None))
        if tenant < 0:
            counts["unknown_tenant"] += 1
            continue
        end = day.end_ts if terminated == -1 else terminated
        if terminated == created:
            counts["zero_length"] += 1
        if max(created, day.start_ts) >= min(end, day.end_ts):
            if terminated != created:
                counts["outside_day"] += 1
            continue
        counts["counted"] += 1
        if unknown_ref:
            counts["unknown_reference"] += 1
        if terminated == -1:
            counts["open"] += 1
        if tag == 1 or (tag == 0 and dn > 0):
            channel = "voice"
        elif tag == 2:
            channel = "multimedia"
        else:
            channel = "?"
            counts["unknown_channel"] += 1
        if place > 0:
            seat = ("place", place)
        elif dn > 0:
            seat = ("dn", dn)
        else:
            seat = ("person", person)
        valid.append({"i": i, "start": created, "end": end, "person": person, "place": place,
                      "dn": dn, "tenant": tenant, "channel": channel, "seat": seat})
    result.counts = counts

    seat_items = [it for it in catalogue.items if it.kind == "concurrent_seat"]
    bundles = list(bundle_set.bundles) if bundle_set else []
    result.items = {"tenant": [it.id for it in seat_items] + [b.id for b in bundles],
                    "system": [it.id for it in seat_items] + [b.id for b in bundles],
                    "agent_group": [it.id for it in seat_items],
                    "place_group": [it.id for it in seat_items]}

    # Documents in force during the day and the subjects they name.
    in_force = []
    for k in range(len(samples)):
        lo = samples[k][0] if k > 0 else day.start_ts - 1
        hi = samples[k + 1][0] if k + 1 < len(samples) else day.end_ts + 1
        if lo < day.end_ts and hi > day.start_ts:
            in_force.append(k)
    tenants = {s["tenant"] for s in valid}
    agent_groups: set[int] = set()
    place_groups: set[int] = set()
    for k in in_force:
        doc = samples[k][1]
        tenants |= {t["DBID"] for t in doc.get("tenants", [])}
        agent_groups |= {g["DBID"] for g in doc.get("agent-groups", [])}
        place_groups |= {g["DBID"] for g in doc.get("place-groups", [])}
    result.subjects = {"tenant": sorted(tenants), "system": [0],
                       "agent_group": sorted(agent_groups), "place_group": sorted(place_groups)}

    def attributes(s: dict[str, Any], doc: Doc) -> dict[str, Any]:
        person = find(doc, "persons", s["person"]) if s["person"] > 0 else None
        lrm = (person or {}).get("userProperties", {}).get("lrm", {})
        media_raw = lrm.get("media", "")
        media = {norm(x) for x in media_raw.split(",")} - {""}
        desktop = norm(lrm.get("desktop", ""))
        switch_type = ""
        d = find(doc, "dns", s["dn"]) if s["dn"] > 0 else None
        if d is not None:
            sw = find(doc, "switches", d.get("switchDBID", -1))
            if sw is not None:
                switch_type = norm(sw.get("type", ""))
        return {"channel": s["channel"], "switch_type": switch_type, "media": media,
                "desktop": desktop, "tenant": s["tenant"]}

    def state_counts(k: int, active: tuple[int, ...]) -> dict[tuple[str, int, int], int]:
        doc = samples[k][1] if samples else {}
        # seat sets per (level, subject): seat -> set of item ids used
        used: dict[tuple[str, int], dict[tuple[str, int], set[int]]] = {}
        for j in active:
            s = valid[j]
            attrs = attributes(s, doc)
            items = {it.id for it in seat_items if rule_holds(it.rule_spec or {}, attrs)}
            subjects = [("tenant", s["tenant"]), ("system", 0)]
            for g in doc.get("agent-groups", []):
                if s["person"] in g.get("members", []):
                    subjects.append(("agent_group", g["DBID"]))
            for g in doc.get("place-groups", []):
                if s["place"] in g.get("members", []):
                    subjects.append(("place_group", g["DBID"]))
            for subject in subjects:
                used.setdefault(subject, {}).setdefault(s["seat"], set()).update(items)
        out: dict[tuple[str, int, int], int] = {}
        for (level, subject), seats in used.items():
            for seat_used in seats.values():
                for item in seat_used:
                    key = (level, subject, item)
                    out[key] = out.get(key, 0) + 1
                if level in ("tenant", "system"):
                    for b in bundles:
                        if seat_used & set(b.include) and not seat_used & set(b.exclude):
                            key = (level, subject, b.id)
                            out[key] = out.get(key, 0) + 1
        return out

    for level, subjects in result.subjects.items():
        for subject in subjects:
            for item in result.items[level]:
                result.minute[(level, subject, item)] = [0] * day.minutes

    memo: dict[tuple[int, tuple[int, ...]], dict[tuple[str, int, int], int]] = {}
    k = 0
    for t in range(day.start_ts, day.end_ts):
        while k + 1 < len(samples) and samples[k + 1][0] <= t:
            k += 1
        active = tuple(j for j, s in enumerate(valid) if s["start"] <= t < s["end"])
        if not active:
            continue
        state = (k, active)
        if state not in memo:
            memo[state] = state_counts(k, active)
        minute = (t - day.start_ts) // 60
        for key, n in memo[state].items():
            row = result.minute[key]
            if n > row[minute]:
                row[minute] = n

    result.excluded = excluded_minutes(day, windows)
    for key, values in result.minute.items():
        result.daily[key] = daily_of(values, result.excluded)

    # Enabled agents: the maximum over the documents in force, latest document on ties.
    for level, subjects in result.subjects.items():
        for subject in subjects:
            best, at = -1, -1
            for k in in_force:
                ts, doc = samples[k]
                if level == "tenant":
                    n = sum(1 for p in doc.get("persons", [])
                            if p.get("tenantDBID") == subject and p.get("isAgent") == 2
                            and p.get("state") == 1)
                elif level == "system":
                    n = sum(1 for p in doc.get("persons", [])
                            if p.get("tenantDBID") in result.subjects["tenant"]
                            and p.get("isAgent") == 2 and p.get("state") == 1)
                else:
                    section = "agent-groups" if level == "agent_group" else "place-groups"
                    group = find(doc, section, subject)
                    members = group.get("members", []) if group else []
                    n = 0
                    for member in set(members):
                        if level == "agent_group":
                            p = find(doc, "persons", member)
                            if p and p.get("isAgent") == 2 and p.get("state") == 1:
                                n += 1
                        else:
                            pl = find(doc, "places", member)
                            if pl and pl.get("state") == 1:
                                n += 1
                if n >= best:
                    best, at = n, (max(ts, day.start_ts) - day.start_ts) // 60
            result.enabled[(level, subject)] = (0, -1) if best < 0 else (best, at)
    return result
