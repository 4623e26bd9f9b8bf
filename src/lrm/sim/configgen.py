"""Generate the configuration of the simulated contact centre (pure, seeded).

Per tenant: one `CFGSIPSwitch` (and, for every third tenant, an Avaya switch with
`CFGACDPosition` DNs), agents with their agent login, DN and place, a few supervisors (persons that
are not agents), spare places and DNs, agent groups and place groups. Each tenant also gets four
configuration changes during the simulated days: an agent added (person, DN, place and group
memberships), an agent disabled, an agent moved between agent groups at 15:00 local time and a
place added to a place group.

The per-agent facts the session generator needs are returned as numpy arrays (`AgentTable`);
the configuration objects themselves are JSON-ready dicts (`ConfigTimeline`).
"""

from __future__ import annotations

import copy
import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from lrm.sim.period import Period
from lrm.sim.timeline import ConfigChange, ConfigDocument, ConfigObject, ConfigTimeline

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

KIND_VOICE, KIND_VOICE_MM, KIND_MM = 0, 1, 2
SIP_SWITCH_TYPE = "CFGSIPSwitch"
OTHER_SWITCH_TYPE = "CFGLucentDefinityG3"  # an Avaya Communication Manager in CfgSwitchType terms
DESKTOPS = ("workspace", "gad", "gsd", "custom", "crm-connector")
DESKTOP_WEIGHTS = (0.50, 0.15, 0.05, 0.20, 0.10)
MEDIA = ("chat,email", "email", "chat")
MEDIA_WEIGHTS = (0.50, 0.25, 0.25)

# Special agents of every tenant (local index within the tenant).
MOVED, PLACE_GROUP_ADDED, DISABLED, NIGHT_WORKER = 0, 1, 2, 3
MIN_AGENTS_PER_TENANT = 5

TENANT_NAMES = ("Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Wonka",
                "Cyberdyne", "Soylent", "Tyrell", "Oscorp", "Vandelay", "Gringotts", "Dunder")
GROUP_NAMES = ("Sales", "Support", "Billing", "Retention", "Collections", "Tech", "VIP",
               "Outbound")
FIRST_NAMES = ("anna", "ben", "carla", "david", "elif", "farid", "grace", "hugo", "ines",
               "jonas", "kemal", "lena", "marco", "nadia", "oscar", "priya", "quentin", "rosa",
               "samir", "tara", "ugo", "vera", "wei", "xenia", "yusuf", "zoe")
LAST_NAMES = ("smith", "garcia", "muller", "rossi", "novak", "kowalski", "dubois", "jensen",
              "silva", "ivanov", "tanaka", "okafor", "kaya", "larsen", "costa", "nagy", "horvat",
              "murphy", "schmidt", "moreau")


@dataclass(frozen=True)
class AgentTable:
    """One entry per agent (persons with isAgent = 2), in tenant order."""

    tenant_index: I32
    tenant_dbid: I32
    person: I32
    place: I32          # -1: no place
    dn: I32             # -1: no DN (multimedia-only agents)
    login: I32          # -1: no agent login
    voice_pair: I32     # ICON pair of the DN's switch, -1 without a DN
    mm_pair: I32        # ICON pair that receives the agent's Interaction Server sessions
    kind: npt.NDArray[np.int8]
    night: BoolArray
    mm_dn_zero: BoolArray   # Interaction Server rows carry PRIMARYDEVICEID 0 instead of NULL
    added_at: I64       # -1, or the instant the agent was created
    disabled_at: I64    # -1, or the instant the agent was disabled

    def __len__(self) -> int:
        return len(self.person)


@dataclass(frozen=True)
class ConfigModel:
    agents: AgentTable
    timeline: ConfigTimeline
    tenant_dbids: tuple[int, ...]
    switch_count: int


@dataclass(frozen=True)
class ChangeTimes:
    """When the per-tenant configuration changes happen (UTC epoch seconds)."""

    added: int
    disabled: int
    moved: int
    place_group_added: int

    @staticmethod
    def of(period: Period) -> ChangeTimes:
        second = min(1, period.days - 1)
        return ChangeTimes(
            added=period.local_clock(0, 13.0),
            disabled=period.local_clock(second, 12.0),
            moved=period.local_clock(second, 15.0),
            place_group_added=period.local_clock(period.days - 1, 10.0),
        )


@contextmanager
def _paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building hundreds of thousands of small dicts
    (they hold no cycles; repeated full collections would dominate the run time)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _tenant_name(index: int) -> str:
    base = TENANT_NAMES[index % len(TENANT_NAMES)]
    return base if index < len(TENANT_NAMES) else f"{base} {index // len(TENANT_NAMES) + 1}"


def _ranks(mask: BoolArray, first_dbid: int) -> I32:
    """DBIDs first_dbid, first_dbid + 1, … for the True entries of `mask`, -1 elsewhere."""
    ranks = np.cumsum(mask, dtype=np.int64) - 1 + first_dbid
    return np.where(mask, ranks, -1).astype(np.int32)


def generate_config(rng: np.random.Generator, *, tenants: int, agents_per_tenant: int,
                    icon_pairs: int, period: Period) -> ConfigModel:
    """The configuration, its change timeline and the agent table, drawn from `rng`."""
    if agents_per_tenant < MIN_AGENTS_PER_TENANT:
        raise ValueError(f"agents_per_tenant must be at least {MIN_AGENTS_PER_TENANT}")
    n_t, n_m = tenants, agents_per_tenant
    n_a = n_t * n_m
    tenant_index = np.repeat(np.arange(n_t, dtype=np.int32), n_m)
    local = np.tile(np.arange(n_m, dtype=np.int32), n_t)
    times = ChangeTimes.of(period)

    # Switches: a SIP switch per tenant, an Avaya switch for every third tenant; switches are
    # spread over the ICON pairs (one pair per site) round robin.
    has_other = np.arange(n_t) % 3 == 1
    switch_rows: list[tuple[int, int, bool]] = []   # (dbid, tenant index, is SIP)
    sip_switch_of = np.zeros(n_t, dtype=np.int32)
    other_switch_of = np.full(n_t, -1, dtype=np.int32)
    for t in range(n_t):
        sip_switch_of[t] = len(switch_rows)
        switch_rows.append((501 + len(switch_rows), t, True))
        if has_other[t]:
            other_switch_of[t] = len(switch_rows)
            switch_rows.append((501 + len(switch_rows), t, False))
    switch_pair = np.arange(len(switch_rows), dtype=np.int32) % icon_pairs

    # Agent attributes (the order of the draws is part of the reproducibility contract).
    u_kind = rng.random(n_a)
    kind = np.where(u_kind < 0.55, KIND_VOICE,
                    np.where(u_kind < 0.90, KIND_VOICE_MM, KIND_MM)).astype(np.int8)
    has_place = (kind != KIND_VOICE) | (rng.random(n_a) >= 0.06)
    on_other = has_other[tenant_index] & (rng.random(n_a) < 0.4)
    night = rng.random(n_a) < 0.10
    mm_dn_zero = rng.random(n_a) < 0.5
    desktop = rng.choice(len(DESKTOPS), size=n_a, p=DESKTOP_WEIGHTS)
    media = rng.choice(len(MEDIA), size=n_a, p=MEDIA_WEIGHTS)
    no_annex = rng.random(n_a) < 0.03
    first = rng.integers(0, len(FIRST_NAMES), size=n_a)
    last = rng.integers(0, len(LAST_NAMES), size=n_a)

    added = local == n_m - 1
    has_place |= (local == PLACE_GROUP_ADDED) | added
    night |= local == NIGHT_WORKER
    kind = np.where(added & (kind == KIND_MM), KIND_VOICE_MM, kind).astype(np.int8)
    no_annex &= ~added
    voice = kind != KIND_MM
    on_other &= voice

    person = (1001 + np.arange(n_a)).astype(np.int32)
    login = _ranks(voice, 2001)
    dn = _ranks(voice, 4001)
    place = _ranks(has_place, 3001)
    switch_index = np.where(on_other, other_switch_of[tenant_index], sip_switch_of[tenant_index])
    voice_pair = np.where(voice, switch_pair[switch_index], -1).astype(np.int32)
    mm_pair = switch_pair[sip_switch_of[tenant_index]].astype(np.int32)
    added_at = np.where(added, times.added, -1).astype(np.int64)
    disabled_at = np.where(local == DISABLED, times.disabled, -1).astype(np.int64)

    agents = AgentTable(
        tenant_index=tenant_index, tenant_dbid=(101 + tenant_index).astype(np.int32),
        person=person, place=place, dn=dn, login=login, voice_pair=voice_pair, mm_pair=mm_pair,
        kind=kind, night=night, mm_dn_zero=mm_dn_zero, added_at=added_at,
        disabled_at=disabled_at)

    builder = _DocumentBuilder(n_t, n_m, switch_rows)
    with _paused_gc():
        builder.build(agents, local=local, switch_index=switch_index, on_other=on_other,
                      desktop=desktop, media=media, no_annex=no_annex, first=first, last=last)
        initial = builder.initial()
        changes = builder.changes(agents, times)
    return ConfigModel(agents=agents, timeline=ConfigTimeline(initial, changes),
                       tenant_dbids=tuple(101 + t for t in range(n_t)),
                       switch_count=len(switch_rows))


class _DocumentBuilder:
    """Builds the JSON objects (list comprehensions over whole columns), then replays the
    changes in time order on the document, snapshotting each changed object."""

    def __init__(self, n_t: int, n_m: int, switch_rows: list[tuple[int, int, bool]]) -> None:
        self.n_t, self.n_m = n_t, n_m
        self.switch_rows = switch_rows
        self.doc: dict[str, dict[int, ConfigObject]] = {
            k: {} for k in ("tenants", "switches", "dns", "places", "persons", "agent-groups",
                            "place-groups")}
        self.pending: dict[int, dict[str, ConfigObject]] = {}   # added agents' objects by tenant
        self.group_of: dict[int, int] = {}        # person DBID -> agent group DBID
        self.pgroup_of: dict[int, int] = {}       # place DBID -> place group DBID
        self.groups_per_tenant = max(2, min(len(GROUP_NAMES), n_m // 10))
        self.pgroups_per_tenant = max(1, min(6, n_m // 25))

    # ------------------------------------------------------------------ initial document
    def build(self, agents: AgentTable, *, local: I32, switch_index: npt.NDArray[Any],
              on_other: BoolArray, desktop: npt.NDArray[Any], media: npt.NDArray[Any],
              no_annex: BoolArray, first: npt.NDArray[Any], last: npt.NDArray[Any]) -> None:
        doc = self.doc
        n_t, n_m = self.n_t, self.n_m
        short = [_tenant_name(t).replace(" ", "") for t in range(n_t)]
        for t in range(n_t):
            doc["tenants"][101 + t] = {"DBID": 101 + t, "name": _tenant_name(t), "state": 1}
        for dbid, t, sip in self.switch_rows:
            doc["switches"][dbid] = {
                "DBID": dbid, "tenantDBID": 101 + t,
                "name": f"{short[t]}_SIP" if sip else f"{short[t]}_Avaya",
                "type": SIP_SWITCH_TYPE if sip else OTHER_SWITCH_TYPE, "state": 1}
        groups: list[ConfigObject] = []
        pgroups: list[ConfigObject] = []
        for t in range(n_t):
            groups += [{"DBID": self.g_first(t) + g, "tenantDBID": 101 + t,
                        "name": GROUP_NAMES[g], "members": []}
                       for g in range(self.groups_per_tenant)]
            pgroups += [{"DBID": self.p_first(t) + g, "tenantDBID": 101 + t,
                         "name": f"Floor {g + 1}", "members": []}
                        for g in range(self.pgroups_per_tenant)]

        # Agents' objects, built type by type over whole columns (the configuration of a large
        # simulation has hundreds of thousands of objects).
        tenant = (101 + agents.tenant_index).astype(np.int64)
        number = np.where(on_other, 50000, 70000) + local
        person, place, dn = agents.person, agents.place, agents.dn
        switch_dbid = np.array([row[0] for row in self.switch_rows], dtype=np.int64)[
            switch_index]
        added = local == n_m - 1
        v = dn >= 0
        dns = [{"DBID": d, "tenantDBID": t, "switchDBID": w, "number": str(num),
                "type": "CFGACDPosition" if other else "CFGExtension", "state": 1}
               for d, t, w, num, other in zip(dn[v].tolist(), tenant[v].tolist(),
                                              switch_dbid[v].tolist(), number[v].tolist(),
                                              on_other[v].tolist(), strict=True)]
        p = place >= 0
        places = [{"DBID": pl, "tenantDBID": t,
                   "name": f"Place_{num}" if d >= 0 else f"Place_MM_{loc:04d}",
                   "DNs": [d] if d >= 0 else [], "state": 1}
                  for pl, t, d, num, loc in zip(place[p].tolist(), tenant[p].tolist(),
                                                dn[p].tolist(), number[p].tolist(),
                                                local[p].tolist(), strict=True)]
        # Annex sections are shared between persons with the same values (never mutated).
        annexes: dict[tuple[int, int, int], dict[str, Any]] = {}
        for m in range(len(MEDIA) + 1):
            for d in range(len(DESKTOPS)):
                section = {"desktop": DESKTOPS[d]}
                annexes[(0, m, d)] = {"lrm": ({"media": MEDIA[m], **section}
                                              if m < len(MEDIA) else section)}
                annexes[(1, m, d)] = {}
        media_or_none = np.where(agents.kind == KIND_VOICE, len(MEDIA), media)
        persons = [{"DBID": pe, "tenantDBID": t,
                    "userName": f"{FIRST_NAMES[f][0]}.{LAST_NAMES[la]}{pe}",
                    "isAgent": 2, "state": 1, "userProperties": annexes[(na, me, de)]}
                   for pe, t, f, la, na, me, de in zip(
                       person.tolist(), tenant.tolist(), first.tolist(), last.tolist(),
                       no_annex.astype(np.int64).tolist(), media_or_none.tolist(),
                       desktop.tolist(), strict=True)]

        # Everything except the agents created during the period goes into the document.
        for key, objects, mask in (("dns", dns, added[v]), ("places", places, added[p]),
                                   ("persons", persons, added)):
            target = doc[key]
            for obj, is_added in zip(objects, mask.tolist(), strict=True):
                if is_added:
                    self.pending.setdefault(obj["tenantDBID"] - 101, {})[key] = obj
                else:
                    target[obj["DBID"]] = obj
        group_of = (np.array([self.g_first(t) for t in range(n_t)])[agents.tenant_index]
                    + local % self.groups_per_tenant)
        pgroup_of = (np.array([self.p_first(t) for t in range(n_t)])[agents.tenant_index]
                     + local % self.pgroups_per_tenant)
        self.group_of = dict(zip(person.tolist(), group_of.tolist(), strict=True))
        self.pgroup_of = dict(zip(place[p].tolist(), pgroup_of[p].tolist(), strict=True))
        by_dbid = {g["DBID"]: g for g in groups}
        for pe, g in zip(person[~added].tolist(), group_of[~added].tolist(), strict=True):
            by_dbid[g]["members"].append(pe)
        pby_dbid = {g["DBID"]: g for g in pgroups}
        in_pgroup = p & ~added & (local != PLACE_GROUP_ADDED)
        for pl, g in zip(place[in_pgroup].tolist(), pgroup_of[in_pgroup].tolist(), strict=True):
            pby_dbid[g]["members"].append(pl)

        # Supervisors (not agents) and spare places/DNs that nobody uses.
        next_person = 1001 + len(agents)
        next_place = 3001 + int(np.count_nonzero(p))
        next_dn = 4001 + int(np.count_nonzero(v))
        sip_of = {t: d for d, t, sip in self.switch_rows if sip}
        for t in range(n_t):
            for s in range(max(1, n_m // 20)):
                doc["persons"][next_person] = {
                    "DBID": next_person, "tenantDBID": 101 + t,
                    "userName": f"supervisor{s + 1}.{short[t].lower()}", "isAgent": 1,
                    "state": 1, "userProperties": {}}
                next_person += 1
            for s in range(max(1, n_m // 20)):
                num = f"{70000 + n_m + s}"
                doc["dns"][next_dn] = {"DBID": next_dn, "tenantDBID": 101 + t,
                                       "switchDBID": sip_of[t], "number": num,
                                       "type": "CFGExtension", "state": 1}
                doc["places"][next_place] = {"DBID": next_place, "tenantDBID": 101 + t,
                                             "name": f"Place_{num}", "DNs": [next_dn],
                                             "state": 1}
                pby_dbid[self.p_first(t) + s % self.pgroups_per_tenant]["members"].append(
                    next_place)
                next_dn += 1
                next_place += 1
        for g in groups:
            doc["agent-groups"][g["DBID"]] = g
        for g in pgroups:
            doc["place-groups"][g["DBID"]] = g

    def g_first(self, t: int) -> int:
        return 7001 + t * self.groups_per_tenant

    def p_first(self, t: int) -> int:
        return 8001 + t * self.pgroups_per_tenant

    def initial(self) -> ConfigDocument:
        """A snapshot of the document. Objects are never modified in place afterwards (a change
        replaces the object with a modified copy), so the snapshot may share them."""
        return {key: [objs[d] for d in sorted(objs)] for key, objs in self.doc.items()}

    # ------------------------------------------------------------------ changes
    def changes(self, agents: AgentTable, times: ChangeTimes) -> list[ConfigChange]:
        """Replay the per-tenant changes in time order on the (mutable) document."""
        doc = self.doc
        per_agent = {name: getattr(agents, name).tolist() for name in ("person", "place")}
        actions: list[tuple[int, int, str]] = []
        for t in range(self.n_t):
            actions += [(times.added, t, "added"), (times.disabled, t, "disabled"),
                        (times.moved, t, "moved"),
                        (times.place_group_added, t, "place_group_added")]
        actions.sort(key=lambda a: (a[0], a[1], a[2]))
        changes: list[ConfigChange] = []

        def emit(at: int, key: str, obj: ConfigObject, what: str) -> None:
            doc[key][obj["DBID"]] = obj
            changes.append(ConfigChange(at=at, key=key, op="upsert", obj=copy.deepcopy(obj),
                                        what=what))

        for at, t, action in actions:
            base = t * self.n_m
            if action == "added":
                objects = self.pending[t]
                person = objects["persons"]["DBID"]
                for key in ("dns", "places", "persons"):
                    if key in objects:
                        emit(at, key, objects[key], f"{key[:-1]} {objects[key]['DBID']} created")
                group = dict(doc["agent-groups"][self.group_of[person]])
                group["members"] = sorted([*group["members"], person])
                emit(at, "agent-groups", group, f"new agent {person} joined group {group['DBID']}")
                place = objects["places"]["DBID"]
                pgroup = dict(doc["place-groups"][self.pgroup_of[place]])
                pgroup["members"] = sorted([*pgroup["members"], place])
                emit(at, "place-groups", pgroup,
                     f"new place {place} joined place group {pgroup['DBID']}")
            elif action == "disabled":
                person = per_agent["person"][base + DISABLED]
                obj = dict(doc["persons"][person])
                obj["state"] = 2
                emit(at, "persons", obj, f"agent {person} disabled")
            elif action == "moved":
                person = per_agent["person"][base + MOVED]
                source = dict(doc["agent-groups"][self.group_of[person]])
                # The moved agent is local index 0, so in its tenant's first group; the
                # target is the tenant's second group (every tenant has at least two).
                target_dbid = source["DBID"] + 1
                target = dict(doc["agent-groups"][target_dbid])
                source["members"] = [m for m in source["members"] if m != person]
                target["members"] = sorted([*target["members"], person])
                what = (f"agent {person} moved from group {source['DBID']} ({source['name']}) "
                        f"to {target['DBID']} ({target['name']})")
                emit(at, "agent-groups", source, what)
                emit(at, "agent-groups", target, what)
                self.group_of[person] = target_dbid
            else:
                place = per_agent["place"][base + PLACE_GROUP_ADDED]
                pgroup = dict(doc["place-groups"][self.pgroup_of[place]])
                pgroup["members"] = sorted([*pgroup["members"], place])
                emit(at, "place-groups", pgroup,
                     f"place {place} added to place group {pgroup['DBID']}")
        return changes
