"""SingleFlight: callers that come while a call for their key runs share it."""

from __future__ import annotations

import asyncio

import pytest

from lrm.api.single_flight import SingleFlight
from tests.own_loop import run_in_own_loop


class Calls:
    def __init__(self) -> None:
        self.count = 0
        self.release = asyncio.Event()

    async def call(self) -> int:
        self.count += 1
        await self.release.wait()
        return self.count


def test_callers_during_a_call_share_it_and_a_later_caller_calls_again() -> None:
    async def main() -> None:
        flight: SingleFlight[str, int] = SingleFlight()
        calls = Calls()
        waiters = [asyncio.ensure_future(flight.run("k", 0, calls.call)) for _ in range(10)]
        await asyncio.sleep(0)
        assert len(flight) == 1
        calls.release.set()
        assert await asyncio.gather(*waiters) == [1] * 10
        assert len(flight) == 0
        assert await flight.run("k", 0, calls.call) == 2

    run_in_own_loop(main())


def test_another_key_or_tag_is_another_call() -> None:
    async def main() -> None:
        flight: SingleFlight[str, int] = SingleFlight()
        calls = Calls()
        first = asyncio.ensure_future(flight.run("k", 0, calls.call))
        other_key = asyncio.ensure_future(flight.run("j", 0, calls.call))
        await asyncio.sleep(0)
        newer_tag = asyncio.ensure_future(flight.run("k", 1, calls.call))
        for _ in range(3):
            await asyncio.sleep(0)
        assert calls.count == 3
        calls.release.set()
        await asyncio.gather(first, other_key, newer_tag)

    run_in_own_loop(main())


def test_a_waiter_that_gives_up_does_not_cancel_the_call_for_the_others() -> None:
    async def main() -> None:
        flight: SingleFlight[str, int] = SingleFlight()
        calls = Calls()
        leaving = asyncio.ensure_future(flight.run("k", 0, calls.call))
        staying = asyncio.ensure_future(flight.run("k", 0, calls.call))
        await asyncio.sleep(0)
        leaving.cancel()
        await asyncio.sleep(0)
        calls.release.set()
        assert await staying == 1
        assert leaving.cancelled()

    run_in_own_loop(main())


def test_an_error_reaches_every_waiter_and_is_not_kept() -> None:
    async def main() -> None:
        flight: SingleFlight[str, int] = SingleFlight()
        started = asyncio.Event()

        async def failing() -> int:
            started.set()
            await asyncio.sleep(0.01)
            raise OSError("database down")

        waiters = [asyncio.ensure_future(flight.run("k", 0, failing)) for _ in range(3)]
        results = await asyncio.gather(*waiters, return_exceptions=True)
        assert [str(r) for r in results] == ["database down"] * 3
        assert len(flight) == 0

        async def working() -> int:
            return 7

        assert await flight.run("k", 0, working) == 7

    run_in_own_loop(main())


def test_a_call_running_on_another_event_loop_is_not_joined() -> None:
    flight: SingleFlight[str, int] = SingleFlight()

    async def value(n: int) -> int:
        return n

    assert run_in_own_loop(flight.run("k", 0, lambda: value(1))) == 1
    assert run_in_own_loop(flight.run("k", 0, lambda: value(2))) == 2


@pytest.mark.parametrize("waiters", [1, 50])
def test_the_result_is_the_call_s(waiters: int) -> None:
    async def main() -> list[int]:
        flight: SingleFlight[int, int] = SingleFlight()

        async def slow() -> int:
            await asyncio.sleep(0.01)
            return 42

        return await asyncio.gather(*(flight.run(1, None, slow) for _ in range(waiters)))

    assert run_in_own_loop(main()) == [42] * waiters
