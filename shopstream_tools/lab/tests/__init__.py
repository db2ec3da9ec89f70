"""The lab's tests, one module each (its run, analysis, charts and part of the report), in the
order they run and are reported."""

from __future__ import annotations

from shopstream_tools.lab.plan import PerformanceTest
from shopstream_tools.lab.tests import (
    pt01_baseline,
    pt02_sync_async,
    pt03_scaling,
    pt03b_balancing,
    pt04_partitions,
    pt04b_keying,
    pt05_burst,
    pt06_tracing,
    pt07_faults,
)

REGISTRY: dict[str, PerformanceTest] = {
    t.id: t
    for t in (
        pt01_baseline.TEST,
        pt02_sync_async.TEST,
        pt03_scaling.TEST,
        pt03b_balancing.TEST,
        pt04_partitions.TEST,
        pt04b_keying.TEST,
        pt05_burst.TEST,
        pt06_tracing.TEST,
        pt07_faults.TEST,
    )
}
TESTS = tuple(REGISTRY)
