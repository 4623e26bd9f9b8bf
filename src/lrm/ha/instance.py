"""One lrm instance of the primary/backup pair (SPEC §1–§2).

Loops, each with one job and the same lifecycle (start with the instance, stop through one path):
- the lease keeper renews or acquires the lease every `renew_interval_s` (database clock),
- the watchdog steps down when no renew succeeded within `renew_deadline_s` — it does not wait
  for a hung renew call — so the report port closes and the job is abandoned *before* the lease
  can expire and be taken,
- the notification listener wakes the keeper at once when the peer releases the lease or an
  operator asks for a switchover (PostgreSQL LISTEN/NOTIFY),
- the scheduler (primary only) samples configuration every 10 minutes, catches up missed dates
  on promotion and runs the nightly job at `nightly_job_time`.

Every way out of primary mode — lease lost, deadline passed, SIGTERM, switchover — goes through
`_leave_primary`.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import psycopg
import sqlalchemy as sa

from lrm import __version__
from lrm.api.listener import Listener
from lrm.domain.errors import FencedError
from lrm.domain.schedule import LeaseTimings
from lrm.observability import Metrics, get_logger
from lrm.settings import Settings
from lrm.store import coordination as co
from lrm.store import job_runs
from lrm.store.db import libpq_url

NOTIFY_CHANNEL = "lrm_lease"


class Scheduler(Protocol):
    """What the primary runs; built by lrm.app and stopped on every exit from primary mode."""

    async def run(self, epoch: int, stop: asyncio.Event) -> None: ...


@dataclass
class LeaseView:
    holder: str | None = None
    epoch: int = 0
    expires_in_s: float = 0.0


class Instance:
    def __init__(self, settings: Settings, engine: sa.Engine, database_url: str, *,
                 report_app: Any, admin_app_factory: Callable[[Instance], Any],
                 scheduler_factory: Callable[[Instance], Scheduler], metrics: Metrics) -> None:
        self.settings = settings
        self.engine = engine
        self.database_url = database_url
        self.instance_id = settings.lrm.instance_id
        self.timings = LeaseTimings(settings.ha.lease_ttl_s, settings.ha.renew_interval_s,
                                    settings.ha.renew_deadline_s)
        self.metrics = metrics
        self.mode = "starting"
        self.epoch = 0
        self.lease = LeaseView()
        self.last_renewed = 0.0
        self.exit_code = 0
        self.last_job: dict[str, Any] | None = None
        self.log = get_logger(instance_id=self.instance_id)
        http = settings.http
        self.report_listener = Listener(report_app, http.report_host, http.report_port,
                                        name="report")
        self.admin_listener = Listener(admin_app_factory(self), http.report_host,
                                       http.admin_port, name="admin")
        self._scheduler_factory = scheduler_factory
        self._scheduler_task: asyncio.Task[None] | None = None
        self._scheduler_stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._shutdown = asyncio.Event()
        self._switchover = asyncio.Event()
        self._renew_future: asyncio.Future[co.LeaseState | None] | None = None
        # The instance whose sessions this primary has still to end (set in the lease thread).
        self._predecessor: str | None = None
        self._predecessor_warned = False
        # Lease calls get their own threads: a hung database call must not starve the rest.
        self._lease_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="lrm-lease")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listener_stop = threading.Event()
        self._transition = asyncio.Lock()

    # ------------------------------------------------------------------ status
    def status(self) -> dict[str, Any]:
        """The /status document. Never touches the database (the admin port must answer even
        when the database does not): `last_job` is refreshed by the lease keeper's thread."""
        return {
            "instance_id": self.instance_id, "mode": self.mode, "epoch": self.epoch,
            "lease_holder": self.lease.holder,
            "lease_expires_in_s": round(self.lease.expires_in_s, 3),
            "last_job": self.last_job, "version": __version__,
            "report_port_open": self.report_listener.is_open,
        }

    # ------------------------------------------------------------------ main
    async def run(self) -> int:
        """Serve until SIGTERM/SIGINT (or lease loss with exit_on_lease_loss). Exit code."""
        self._loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                self._loop.add_signal_handler(sig, self.request_shutdown)
        await self.admin_listener.open()
        self._set_mode("backup")
        listener = threading.Thread(target=self._listen_notifications, name="lrm-notify",
                                    daemon=True)
        listener.start()
        tasks = [asyncio.create_task(self._keeper(), name="lease-keeper"),
                 asyncio.create_task(self._watchdog(), name="watchdog")]
        await self._shutdown.wait()
        await self._leave_primary("shutdown", release=True)
        self._set_mode("stopping")
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._listener_stop.set()
        self._lease_pool.shutdown(wait=False, cancel_futures=True)
        await self.admin_listener.close()
        self.log.info("instance.stopped", exit_code=self.exit_code)
        return self.exit_code

    def request_shutdown(self) -> None:
        self.log.info("instance.shutdown_requested")
        self._shutdown.set()
        self._wake.set()

    # ------------------------------------------------------------------ lease keeper
    async def _keeper(self) -> None:
        while not self._shutdown.is_set():
            if self._switchover.is_set() and self.mode == "primary":
                self._switchover.clear()
                await self._leave_primary("switchover", release=True)
            else:
                await self._renew_once()
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.timings.renew_interval_s)

    async def _renew_once(self) -> None:
        pending = self._renew_future
        if pending is not None and not pending.done():
            # The previous renew is still stuck (a cut-off database can hold a call for
            # minutes): do not pile up threads; the watchdog steps down on time regardless.
            self.metrics.lease_renew_failures.inc()
            return
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._lease_pool, self._acquire_or_renew)
        self._renew_future = future
        try:
            state = await asyncio.wait_for(asyncio.shield(future),
                                           timeout=self.timings.renew_interval_s)
        except Exception as exc:  # every failure to renew is treated alike
            self.metrics.lease_renew_failures.inc()
            self.log.warning("lease.renew_failed", epoch=self.epoch,
                             error=f"{exc.__class__.__name__}: {exc}".strip(": "))
            return
        if self._shutdown.is_set():
            return
        if state is None:
            await self._observe_peer()
            if self.mode == "primary":
                await self._leave_primary("lease taken by another instance", release=False)
            return
        self.last_renewed = time.monotonic()
        self.lease = LeaseView(state.holder, state.epoch, state.expires_in_s)
        if self.mode != "primary":
            await self._become_primary(state.epoch)

    def _acquire_or_renew(self) -> co.LeaseState | None:
        with co.coordination_transaction(self.engine, self.timings.ttl_s) as connection:
            state = co.acquire_or_renew_lease(connection, self.instance_id,
                                              self.timings.ttl_s)
        if state is not None and state.previous_holder not in (None, self.instance_id):
            self._predecessor = state.previous_holder
        if state is not None and self._predecessor is not None:
            self._end_predecessor_sessions(state.epoch, self._predecessor)
        with contextlib.suppress(sa.exc.SQLAlchemyError), self.engine.connect() as connection:
            run = job_runs.last_run(connection)
            if run is not None:
                self.last_job = {
                    "business_date": run.business_date.isoformat(), "status": run.status,
                    "finished_at": run.finished_at.isoformat() if run.finished_at else None}
        return state

    def _end_predecessor_sessions(self, epoch: int, predecessor: str) -> None:
        """End what the previous primary left open (co.end_sessions_of), before this primary's
        first job when it can; retried at each renewal until it has been done once."""
        try:
            with co.coordination_transaction(self.engine, self.timings.ttl_s) as connection:
                outcome = co.end_sessions_of(connection, self.instance_id, epoch, predecessor,
                                             silence_s=self.timings.ttl_s)
        except FencedError:
            self._predecessor = None  # no longer ours to clean up
            return
        except sa.exc.SQLAlchemyError as exc:
            if not self._predecessor_warned:
                self._predecessor_warned = True
                self.log.warning("lease.predecessor_sessions_not_ended",
                                 predecessor=predecessor,
                                 error=str(getattr(exc, "orig", exc)).strip())
            return
        self._predecessor = None
        self._predecessor_warned = False
        if outcome.ended:
            self.log.warning("lease.predecessor_sessions_ended", predecessor=predecessor,
                             sessions=outcome.ended)
        if outcome.hidden:
            self.log.warning("lease.predecessor_sessions_not_ended", predecessor=predecessor,
                             sessions=outcome.hidden,
                             error="this database role may not see their state: connect both "
                                   "instances as the same role, or grant pg_read_all_stats "
                                   "and pg_signal_backend")

    async def _observe_peer(self) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(Exception):
            state = await asyncio.wait_for(
                loop.run_in_executor(self._lease_pool, self._read_lease),
                timeout=self.timings.renew_interval_s)
            if state is not None:
                self.lease = LeaseView(state.holder, state.epoch, state.expires_in_s)

    def _read_lease(self) -> co.LeaseState | None:
        with self.engine.connect() as connection:
            return co.read_lease(connection)

    async def _watchdog(self) -> None:
        while not self._shutdown.is_set():
            if self.mode == "primary" and self.timings.must_step_down(self.last_renewed,
                                                                      time.monotonic()):
                await self._leave_primary("renew deadline passed", release=False)
            await asyncio.sleep(0.1)

    # ------------------------------------------------------------------ transitions
    async def _become_primary(self, epoch: int) -> None:
        async with self._transition:
            if self.mode == "primary" or self._shutdown.is_set():
                return
            self.epoch = epoch
            self.log.info("lease.acquired", epoch=epoch)
            try:
                await self.report_listener.open()
            except OSError as exc:
                self.log.error("report.listen_failed", epoch=epoch, error=str(exc))
                await asyncio.to_thread(self._release, epoch)
                return
            self._set_mode("primary")
            self._scheduler_stop = asyncio.Event()
            scheduler = self._scheduler_factory(self)
            self._scheduler_task = asyncio.create_task(
                scheduler.run(epoch, self._scheduler_stop), name="scheduler")

    async def _leave_primary(self, reason: str, *, release: bool) -> None:
        """The one path out of primary mode: close the report port, stop the scheduler and the
        job, release the lease when leaving gracefully."""
        async with self._transition:
            if self.mode != "primary":
                return
            epoch = self.epoch
            graceful = release
            self.log.log(20 if graceful else 40, "lease.released" if graceful else "lease.lost",
                         epoch=epoch, reason=reason)
            await self.report_listener.close()
            self._scheduler_stop.set()
            task = self._scheduler_task
            if task is not None:
                task.cancel()
            self._set_mode("backup")
            if task is not None:
                # The job gets a moment to reach a checkpoint; anything it commits later is
                # refused by the fences.
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(task, timeout=5)
            self._scheduler_task = None
            if release:
                loop = asyncio.get_running_loop()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(
                        loop.run_in_executor(self._lease_pool, self._release, epoch), timeout=3)
            if not graceful and self.settings.ha.exit_on_lease_loss:
                self.exit_code = 1
                self._shutdown.set()

    def _release(self, epoch: int) -> None:
        with co.coordination_transaction(self.engine, self.timings.ttl_s) as connection:
            co.release_lease(connection, self.instance_id, epoch)
            connection.execute(sa.text("SELECT pg_notify(:c, :p)"),
                               {"c": NOTIFY_CHANNEL, "p": f"released:{self.instance_id}"})

    def _set_mode(self, mode: str) -> None:
        if mode == self.mode:
            return
        self.mode = mode
        self.metrics.is_primary.set(1 if mode == "primary" else 0)
        self.metrics.lease_epoch.set(self.epoch)
        if mode in ("primary", "backup"):
            self.metrics.mode_changes.labels(mode=mode).inc()
        self.log.info(f"mode.{mode}", epoch=self.epoch)

    # ------------------------------------------------------------------ notifications
    def _listen_notifications(self) -> None:
        """Blocking LISTEN loop in a thread; hands events to the event loop."""
        backoff = 0.5
        while not self._listener_stop.is_set():
            try:
                with psycopg.connect(libpq_url(self.database_url), autocommit=True,
                                     connect_timeout=3,
                                     application_name=f"lrm-notify-{self.instance_id}") as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    backoff = 0.5
                    while not self._listener_stop.is_set():
                        for note in conn.notifies(timeout=1.0):
                            self._dispatch(note.payload)
            except psycopg.Error:
                self._listener_stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)

    def _dispatch(self, payload: str) -> None:
        loop = self._loop
        if loop is None:
            return
        kind, _, target = payload.partition(":")
        if kind == "switchover" and target in ("", self.instance_id):
            loop.call_soon_threadsafe(self._switchover.set)
        if kind != "released" or target != self.instance_id:
            loop.call_soon_threadsafe(self._wake.set)


def request_switchover(engine: sa.Engine) -> None:
    """Ask the current primary to hand over (lrm ha switchover)."""
    with engine.begin() as connection:
        state = co.read_lease(connection)
        holder = state.holder if state else ""
        connection.execute(sa.text("SELECT pg_notify(:c, :p)"),
                           {"c": NOTIFY_CHANNEL, "p": f"switchover:{holder or ''}"})
