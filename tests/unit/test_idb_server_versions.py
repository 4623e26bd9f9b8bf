"""Which IDB servers the reader asks to plan serially (pure: libpq's version numbers)."""

from __future__ import annotations

import pytest

from lrm.sources.idb import plans_in_parallel


@pytest.mark.parametrize(("version", "parallel"), [
    (90224, False),   # 9.2.24
    (90523, False),   # 9.5.23: no parallel query, no max_parallel_workers_per_gather
    (90600, True),    # 9.6.0
    (100023, True),   # 10.23
    (180001, True),   # 18.1
])
def test_serial_planning_is_asked_only_of_servers_that_plan_in_parallel(version: int,
                                                                        parallel: bool) -> None:
    assert plans_in_parallel(version) is parallel
