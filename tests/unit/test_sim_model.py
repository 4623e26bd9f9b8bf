"""The pure simulation model: configuration, sessions, IDB copies and GVP counts."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from lrm.sim.copies import BAD_KINDS, UNKNOWN_DBID_BASE
from lrm.sim.model import SimDataset, SimParams, generate
from lrm.sim.sessions import (
    F_MM_OVERLAP,
    F_NIGHT,
    F_RELOGIN,
    F_ZERO,
    OPEN,
    PROVIDER_MULTIMEDIA,
    PROVIDER_VOICE,
    SessionTable,
)

TODAY = date(2026, 11, 25)


@pytest.fixture(scope="module")
def dataset() -> SimDataset:
    return generate(SimParams(tenants=4, agents_per_tenant=30, days=4, seed=3, bad_rows=3,
                              timezone="Europe/Berlin"), today=TODAY)


@pytest.fixture(scope="module")
def large() -> SimDataset:
    return generate(SimParams(tenants=10, agents_per_tenant=100, days=7, seed=5,
                              icon_pairs=2), today=TODAY)


def _arrays(ds: SimDataset) -> list[bytes]:
    tables: list[SessionTable] = [ds.sessions, *(i.rows for i in ds.idbs)]
    return [np.ascontiguousarray(getattr(t, name)).tobytes()
            for t in tables for name in t.__dataclass_fields__] + [ds.gvp.counts.tobytes()]


def test_same_seed_gives_identical_data_and_another_seed_differs() -> None:
    """Generation is a pure function of its parameters: same seed, same bytes; else new data."""
    params = SimParams(tenants=3, agents_per_tenant=10, days=2, seed=11, bad_rows=1)
    first, second = generate(params, today=TODAY), generate(params, today=TODAY)
    assert _arrays(first) == _arrays(second)
    assert first.config == second.config
    other = generate(SimParams(tenants=3, agents_per_tenant=10, days=2, seed=12, bad_rows=1),
                     today=TODAY)
    assert not np.array_equal(first.sessions.guid[:10], other.sessions.guid[:10])
    assert first.gvp.counts.tobytes() != other.gvp.counts.tobytes()


def test_start_defaults_to_the_last_full_days_before_today() -> None:
    """Without `start`, the simulated days are the `days` local days just before `today`."""
    ds = generate(SimParams(tenants=1, agents_per_tenant=5, days=3, timezone="Asia/Tokyo"),
                  today=TODAY)
    assert ds.params.start == date(2026, 11, 22)
    assert ds.period.end_ts == int(datetime(2026, 11, 25, tzinfo=ZoneInfo("Asia/Tokyo"))
                                   .timestamp())
    with pytest.raises(ValueError, match="start or today"):
        generate(SimParams())


def test_invalid_parameters_are_refused_with_every_problem() -> None:
    """Bad parameters fail at construction, naming each problem."""
    with pytest.raises(ValueError, match="tenants") as info:
        SimParams(tenants=0, agents_per_tenant=2, timezone="Mars/Olympus")
    assert "agents_per_tenant" in str(info.value)
    assert "Mars/Olympus" in str(info.value)


def test_guids_are_unique_version_4_uuids(large: SimDataset) -> None:
    """LOGINSESSIONIDs are canonical lowercase UUIDs, unique across the whole data set."""
    guids = large.sessions.guid
    assert len(np.unique(guids)) == len(guids)
    text = guids[0].decode()
    assert len(text) == 36
    assert text[14] == "4"
    assert text[19] in "89ab"
    assert text == text.lower()


def test_every_session_references_existing_configuration(dataset: SimDataset) -> None:
    """Each true session's person, place and DN exist (in one tenant) in the configuration."""
    cfg = dataset.config
    tenant_of = {key: {o["DBID"]: o["tenantDBID"] for o in cfg[key]}
                 for key in ("persons", "places", "dns")}
    s = dataset.sessions
    for agent, place, dn, tenant in zip(s.agent.tolist(), s.place.tolist(), s.dn.tolist(),
                                        s.tenant.tolist(), strict=True):
        assert tenant_of["persons"][agent] == tenant
        if place >= 0:
            assert tenant_of["places"][place] == tenant
        if dn > 0:
            assert tenant_of["dns"][dn] == tenant


def test_sessions_respect_the_configuration_in_force_at_login(dataset: SimDataset) -> None:
    """An agent logs in only while it exists, and a disabled agent is logged out for good."""
    s = dataset.sessions
    timeline = dataset.timeline
    for created, agent in zip(s.created_ts.tolist(), s.agent.tolist(), strict=True):
        persons = {p["DBID"]: p for p in timeline.document_at(created)["persons"]}
        assert agent in persons
        assert persons[agent]["state"] == 1
    disabled = [c for c in timeline.changes if c.what.endswith("disabled")]
    assert len(disabled) == dataset.params.tenants
    for change in disabled:
        mine = s.agent == change.obj["DBID"]
        ends = np.where(s.terminated_ts[mine] == OPEN, np.iinfo(np.int64).max,
                        s.terminated_ts[mine])
        assert (ends <= change.at).all()


def test_session_kinds_follow_the_icon_conventions(dataset: SimDataset) -> None:
    """Voice rows carry DN and login; Interaction Server rows have no login, DN NULL or 0 and a
    place; some voice agents have a DN but no place."""
    s = dataset.sessions
    voice = s.provider_tag == PROVIDER_VOICE
    mm = s.provider_tag == PROVIDER_MULTIMEDIA
    assert voice.any()
    assert mm.any()
    assert (s.dn[voice] > 0).all()
    assert (s.login[voice] > 0).all()
    assert (s.login[mm] == -1).all()
    assert set(np.unique(s.dn[mm]).tolist()) == {-1, 0}
    assert (s.place[mm] > 0).all()
    assert (s.place[voice] == -1).any()


def test_multimedia_sessions_overlap_a_voice_session_of_the_same_agent(
        dataset: SimDataset) -> None:
    """Each overlapping Interaction Server session lies within a voice session of its agent."""
    s = dataset.sessions
    end = np.where(s.terminated_ts == OPEN, dataset.period.end_ts + 10**7, s.terminated_ts)
    overlaps = np.flatnonzero((s.flags & F_MM_OVERLAP) != 0)
    assert len(overlaps) > 0
    for i in overlaps.tolist():
        voice = (s.agent == s.agent[i]) & (s.provider_tag == PROVIDER_VOICE)
        assert ((s.created_ts[voice] <= s.created_ts[i]) & (end[voice] >= end[i])).any()


def test_shift_patterns_are_realistic(large: SimDataset) -> None:
    """Day shifts start 07:00-11:30 local and last ~7.5 h (median); night shifts start in the
    evening and cross midnight; ~10 % short re-logins; 1-3 sessions per agent and day."""
    s, period = large.sessions, large.period
    main = (s.flags & (F_RELOGIN | F_ZERO | F_MM_OVERLAP)) == 0
    day = main & ((s.flags & F_NIGHT) == 0) & (s.created_ts >= period.start_ts)
    local_hour = ((s.created_ts - period.start_ts) % 86_400) / 3600
    first_of_shift = day & (local_hour < 11.5)
    assert (local_hour[first_of_shift] >= 7.0).all()
    assert (local_hour[day] < 19.5).all()
    night = main & ((s.flags & F_NIGHT) != 0) & (s.created_ts >= period.start_ts)
    assert np.count_nonzero(night & (local_hour >= 20.5)) > 0
    assert large.across_midnight()[night].mean() > 0.5
    # Session length (a shift split into several sessions gives shorter ones).
    finished = day & (s.terminated_ts != OPEN)
    durations = (s.terminated_ts - s.created_ts)[finished] / 3600
    assert 4.0 < float(np.median(durations)) < 8.0
    relogins = np.count_nonzero(s.flags & F_RELOGIN) / np.count_nonzero(main)
    assert 0.06 < relogins < 0.14
    voice_main = main & (s.provider_tag == PROVIDER_VOICE)
    per_agent_day = np.count_nonzero(voice_main) / (len(np.unique(s.agent[voice_main]))
                                                     * period.days)
    assert 1.0 < per_agent_day < 2.0


def test_special_sessions_exist(dataset: SimDataset) -> None:
    """Zero-length, open-at-the-end and across-local-midnight sessions are all present."""
    s = dataset.sessions
    assert np.count_nonzero(s.created_ts == s.terminated_ts) > 0
    assert np.count_nonzero(s.is_open) > 0
    assert (s.created_ts[s.is_open] < dataset.period.end_ts).all()
    assert np.count_nonzero(dataset.across_midnight()) > 0
    assert (s.terminated_ts[~s.is_open] <= dataset.period.end_ts).all()


def _by_guid(rows: SessionTable) -> dict[bytes, int]:
    return {g: i for i, g in enumerate(rows.guid.tolist())}


def test_ha_copies_agree_except_in_the_outage_window(dataset: SimDataset) -> None:
    """Copy B misses sessions started in its outage window and lacks the ends that fell in it;
    everything else (except ID and GSYS_DOMAIN) is identical to copy A."""
    a, b = (i.rows for i in dataset.idbs)
    (window,) = dataset.outages
    in_b = _by_guid(b)
    started_in = window.contains(a.created_ts)
    ended_in = (a.terminated_ts != OPEN) & window.contains(a.terminated_ts) & ~started_in
    assert started_in.any()
    assert ended_in.any()
    conflict = a.bad_kind == BAD_KINDS.index("conflicting_agent") + 1
    for i, guid in enumerate(a.guid.tolist()):
        if started_in[i]:
            assert guid not in in_b
            continue
        j = in_b[guid]
        assert a.id[i] != b.id[j]
        assert a.gsys_domain[i] != b.gsys_domain[j]
        assert a.created_ts[i] == b.created_ts[j]
        assert a.agent[i] == b.agent[j] or conflict[i]
        if ended_in[i]:
            assert (b.terminated_ts[j], b.state[j], b.gsys_useq[j]) == (OPEN, 0, -1)
        else:
            assert (a.terminated_ts[i], a.state[i], a.gsys_useq[i]) == (
                b.terminated_ts[j], b.state[j], b.gsys_useq[j])
            assert (a.place[i], a.dn[i], a.login[i], a.provider_tag[i], a.gsys_seq[i]) == (
                b.place[j], b.dn[j], b.login[j], b.provider_tag[j], b.gsys_seq[j])
    assert len(b) == len(a) - np.count_nonzero(started_in)


def test_bad_rows_are_exactly_as_many_as_asked(dataset: SimDataset) -> None:
    """Each IDB holds `bad_rows` rows of every kind, each bad in exactly its own way."""
    n = dataset.params.bad_rows
    a, b = (i.rows for i in dataset.idbs)
    for rows in (a, b):
        for number, kind in enumerate(BAD_KINDS, start=1):
            assert np.count_nonzero(rows.bad_kind == number) == n, kind
        good = rows.bad_kind == 0
        assert (rows.terminated_ts[good & ~rows.is_open] >= rows.created_ts[good & ~rows.is_open]
                ).all()
        assert np.count_nonzero(rows.terminated_ts[~rows.is_open]
                                < rows.created_ts[~rows.is_open]) == n
        assert np.count_nonzero(rows.created_ts > dataset.period.end_ts + 365 * 86_400) == n
        assert np.count_nonzero(rows.place >= UNKNOWN_DBID_BASE["unknown_place"]) == n
        assert np.count_nonzero(rows.dn >= UNKNOWN_DBID_BASE["unknown_dn"]) == n
        assert np.count_nonzero(rows.agent >= UNKNOWN_DBID_BASE["unknown_person"]) == n
    in_b = _by_guid(b)
    differing = [g for i, g in enumerate(a.guid.tolist()) if g in in_b
                 and a.agent[i] != b.agent[in_b[g]]]
    assert len(differing) == n


def test_without_ha_there_is_one_idb_per_site_and_no_outage() -> None:
    """`ha=False` gives one IDB per ICON site, no outage and no cross-copy conflicts."""
    ds = generate(SimParams(tenants=4, agents_per_tenant=8, days=2, ha=False, icon_pairs=2,
                            bad_rows=1), today=TODAY)
    assert [i.suffix for i in ds.idbs] == ["site1", "site2"]
    assert ds.outages == ()
    assert sum(len(i.rows) for i in ds.idbs) == len(ds.sessions) + 2 * 5
    assert {i.pair for i in ds.idbs} == {0, 1}


def test_sessions_are_split_between_pairs_by_switch(large: SimDataset) -> None:
    """With two ICON sites each pair records its own switches' sessions, and together all."""
    s = large.sessions
    assert set(np.unique(s.pair).tolist()) == {0, 1}
    rows = [i.rows for i in large.idbs if i.copy == "a"]
    assert sum(len(r) for r in rows) == len(s)
    switch_of_dn = {d["DBID"]: d["switchDBID"] for d in large.config["dns"]}
    pair_of_switch: dict[int, set[int]] = {}
    voice = s.provider_tag == PROVIDER_VOICE
    for dn, pair in zip(s.dn[voice].tolist(), s.pair[voice].tolist(), strict=True):
        pair_of_switch.setdefault(switch_of_dn[dn], set()).add(pair)
    assert all(len(p) == 1 for p in pair_of_switch.values())


def test_configuration_has_the_spec_shapes(dataset: SimDataset) -> None:
    """Every object has exactly the SPEC §4.2 attributes; DN and switch types are PSDK names."""
    cfg = dataset.config
    expected = {
        "tenants": {"DBID", "name", "state"},
        "switches": {"DBID", "tenantDBID", "name", "type", "state"},
        "dns": {"DBID", "tenantDBID", "switchDBID", "number", "type", "state"},
        "places": {"DBID", "tenantDBID", "name", "DNs", "state"},
        "persons": {"DBID", "tenantDBID", "userName", "isAgent", "state", "userProperties"},
        "agent-groups": {"DBID", "tenantDBID", "name", "members"},
        "place-groups": {"DBID", "tenantDBID", "name", "members"},
    }
    for key, attributes in expected.items():
        assert cfg[key], key
        assert all(set(o) == attributes for o in cfg[key]), key
        dbids = [o["DBID"] for o in cfg[key]]
        assert dbids == sorted(set(dbids)), key
    assert {o["type"] for o in cfg["switches"]} == {"CFGSIPSwitch", "CFGLucentDefinityG3"}
    assert {o["type"] for o in cfg["dns"]} == {"CFGExtension", "CFGACDPosition"}
    annexes = [p["userProperties"].get("lrm", {}) for p in cfg["persons"]]
    assert {"chat,email", "email", "chat"} <= {a.get("media") for a in annexes}
    assert {"workspace", "gad", "custom"} <= {a.get("desktop") for a in annexes}
    assert any(p["isAgent"] == 1 for p in cfg["persons"])
    assert any(p["state"] == 2 for p in cfg["persons"])


def test_change_timeline_moves_an_agent_at_15_local(dataset: SimDataset) -> None:
    """An agent moves between agent groups at 15:00 local: before, in the first; after, the
    second."""
    moves = [c for c in dataset.timeline.changes if "moved" in c.what]
    at = moves[0].at
    local = datetime.fromtimestamp(at, UTC).astimezone(ZoneInfo(dataset.params.timezone))
    assert (local.hour, local.minute) == (15, 0)
    person = 1001     # tenant 101's first agent
    before = {g["DBID"]: g["members"] for g in dataset.timeline.document_at(at - 1)["agent-groups"]}
    after = {g["DBID"]: g["members"] for g in dataset.timeline.document_at(at)["agent-groups"]}
    assert person in before[7001]
    assert person not in before[7002]
    assert person not in after[7001]
    assert person in after[7002]


def test_gvp_counts_are_plausible(large: SimDataset) -> None:
    """GVP counts cover the period in 5-minute bins; ASR and TTS never exceed RM; the system
    series is the per-bin sum over tenants and peaks in business hours."""
    gvp = large.gvp
    assert gvp.start_ts == large.period.start_ts
    assert gvp.end_ts == large.period.end_ts
    rm, asr, tts = gvp.counts
    assert (asr <= rm).all()
    assert (tts <= rm).all()
    assert np.array_equal(gvp.system("RM"), rm.sum(axis=0))
    hours = ((np.arange(gvp.bins) * 300) % 86_400) // 3600
    system = gvp.system("RM")
    assert system[(hours >= 11) & (hours < 15)].mean() > 3 * system[hours < 4].mean()
