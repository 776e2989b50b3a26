"""Worker threads for batched statistics on CPU, with torch's intra-op threads held at 1 meanwhile.

Blocks of maps run on a pool of ``torch.get_num_threads()`` Python threads, each op on one thread.
A torch op releases the GIL while it computes, so blocks of a few cache-sized ops scale with the
workers, whereas the same ops split again by intra-op OpenMP spend the cores on barriers and
spin-waiting (and stall whenever one core is busy elsewhere).
"""

from __future__ import annotations

import contextlib
import threading

import torch

_INTRAOP = threading.Lock()
_intraop = {"calls": 0, "threads": 1}  # calls holding torch's intra-op threads at 1, and the count to restore


@contextlib.contextmanager
def cpu_workers(device: torch.device):
    """Number of worker threads for the blocks; on CPU torch's intra-op threads are held at 1 meanwhile.

    Blocks run on a pool of ``torch.get_num_threads()`` threads, each op on one thread. A torch op
    releases the GIL while it computes, so whole-map blocks (few, large ops) scale with the workers,
    whereas ops split further, or intra-op OpenMP regions inside the workers, spend the cores on
    overhead and spin-waiting. Threads take torch's thread count at their first op, so it is set to
    1 for the duration of the call and restored afterwards (concurrent calls share the saved count).
    """
    if device.type != "cpu":
        yield 1
        return
    with _INTRAOP:
        if _intraop["calls"] == 0:
            _intraop["threads"] = torch.get_num_threads()
            torch.set_num_threads(1)
        _intraop["calls"] += 1
        threads = _intraop["threads"]
    try:
        yield threads
    finally:
        with _INTRAOP:
            _intraop["calls"] -= 1
            if _intraop["calls"] == 0:
                torch.set_num_threads(_intraop["threads"])
