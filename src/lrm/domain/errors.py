"""Errors the rest of lrm understands. Adapters translate driver exceptions into these at the
edge, so the job, the CLI and the API never see a psycopg or httpx type."""

from __future__ import annotations


class LrmError(Exception):
    """Base of every error lrm reports to an operator."""

    exit_code = 1
    # What a failing job run had learnt before the error (set by the job, for its record).
    summary: object = None


class SettingsError(LrmError):
    """The configuration file or an environment override is invalid."""

    exit_code = 2


class DatabaseError(LrmError):
    """The LRM database (or the embedded server) could not be used."""


class SourceError(LrmError):
    """A source (IDB, GVP Reporting Server, configuration) could not be read."""

    def __init__(self, message: str, *, source: str) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source


class InputError(LrmError):
    """Input supplied by a user (a file, a request parameter) is invalid."""

    exit_code = 2

    def __init__(self, problems: list[str], *, what: str) -> None:
        super().__init__(f"invalid {what}: " + "; ".join(problems))
        self.problems = problems
        self.what = what


class LockHeldError(LrmError):
    """Another run holds the nightly job lock."""

    exit_code = 3

    def __init__(self, holder: str, since: str) -> None:
        super().__init__(f"the nightly job lock is held by {holder} (since {since}); "
                         "not starting a second run")
        self.holder = holder


class FencedError(LrmError):
    """This instance no longer holds the lease (or the job lock) it started with: its writes are
    refused so that a stale primary can never commit."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"fenced: {detail}")
