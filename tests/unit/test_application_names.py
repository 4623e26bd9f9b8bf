"""The PostgreSQL application_name of lrm's sessions: how a new primary finds its
predecessor's `lrm serve` sessions, and leaves every command alone."""

from __future__ import annotations

from lrm.store import coordination as co


def test_application_names_are_exact_and_never_shared() -> None:
    """Serve and command sessions of any two instances have different names, within
    PostgreSQL's 63 bytes of printable ASCII (a longer or other id is named by a digest)."""
    ids = ["a", "cli-a", "serve-a", "x" * 64, "x" * 65, "café", "caf\u00e9 ", "lrm-a"]
    names = [f(i) for i in ids for f in (co.serving_application_name,
                                         co.command_application_name)]
    assert len(set(names)) == len(names)
    assert all(len(n.encode()) <= 63 and n.isascii() and n.isprintable() for n in names)
    assert co.serving_application_name("lrm-a") == "lrm-serve-lrm-a"
