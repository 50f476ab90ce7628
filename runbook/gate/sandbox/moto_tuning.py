"""Two of moto's per-request costs, memoised in the process that serves moto (the moto host).

moto 5.2 re-reads what never changes while it serves:
- ``moto.backends.list_of_moto_modules`` lists moto's package folder (one ``isdir`` per entry,
  ~170) for every request it routes by host;
- ``moto.core.utils`` makes a new botocore loader for each service model it loads, and each new
  loader scans every data folder of botocore again (~15 ms a scan).

Together 0.4 s of a first seed (2.1 s, scripts/bench_world.py) and 7% of every request after
it. Both keep their answers: the same folder listing, one loader (whose cache botocore keeps).
"""

from __future__ import annotations

import functools

__all__ = ["apply"]


def apply() -> None:
    """Memoise both, once per process."""
    import moto.backends
    import moto.core.utils

    if getattr(moto.backends, "_runbook_tuned", False):
        return
    modules = tuple(moto.backends.list_of_moto_modules())
    moto.backends.list_of_moto_modules = lambda: modules
    moto.core.utils.create_loader = functools.cache(moto.core.utils.create_loader)  # type: ignore[attr-defined]
    moto.backends._runbook_tuned = True  # type: ignore[attr-defined]
