"""A bench-only memory probe for worker processes: put this folder on PYTHONPATH with SMSDISPATCH_MEMPROBE set
to a folder, and every Python process started with `worker` in its arguments writes, every
SMSDISPATCH_MEMPROBE_EVERY seconds (default 20), one JSON line to `<folder>/<pid>.jsonl`:

* `rss_kb`, thread count, CPython's allocated blocks and its small-object allocator's 1 MiB arenas and bytes
  (`pymalloc`), glibc's `mallinfo2` over all its arenas (`arena`: bytes taken from the system, `hblkhd`:
  mmapped blocks, `uordblks` in use, `fordblks` free inside the arenas);
* the entries of each SQLAlchemy engine's compiled cache (`compiled_caches`);
* the 25 types whose number of live objects (`gc.get_objects`) grew most since the first sample;
* with SMSDISPATCH_MEMPROBE_TRACE=1, tracemalloc (1 frame) from the first sample on: the bytes allocated
  since then and still alive (`traced_kb`), their peak, and the 25 source lines holding most of them.
  (Started with the process instead, tracing the imports' million objects stalled the workers.)

`bench/soak.py --memprobe` sets it up for its workers. Not part of the product: nothing imports it.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import sys
import threading
import time
from collections import Counter


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
            "keepcost",
        )
    ]  # fmt: skip


def _mallinfo() -> dict[str, int]:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
        info = libc.mallinfo2()
    except (OSError, AttributeError):
        return {}
    return {k: getattr(info, k) for k, _ in _MallInfo2._fields_}


def _rss_kb() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _pymalloc() -> dict[str, int]:
    """CPython's small-object allocator (`sys._debugmallocstats`, which writes to fd 2: caught in a file for
    the call): arenas of 1 MiB held now and at most, bytes in allocated blocks and free in its pools."""
    import tempfile

    wanted = {
        "# arenas allocated current": "arenas",
        "# arenas highwater mark": "arenas_max",
        "# bytes in allocated blocks": "allocated",
        "# bytes in available blocks": "available",
        "# bytes in unused pools": "unused_pools",
    }
    with tempfile.TemporaryFile("w+") as tmp:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            os.dup2(tmp.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        out: dict[str, int] = {}
        for line in tmp:
            name, _, value = line.rpartition("=")
            key = wanted.get(name.strip())
            if key:
                out[key] = int(value.strip().replace(",", ""))
    return out


def _types() -> tuple[Counter[str], list[int]]:
    """Live objects by type name, and the size of every SQLAlchemy engine's compiled cache."""
    objects = gc.get_objects()
    engine = getattr(sys.modules.get("sqlalchemy.engine.base"), "Engine", None)
    caches = [
        len(o._compiled_cache) for o in objects if engine and isinstance(o, engine) and o._compiled_cache
    ]
    return Counter(type(o).__qualname__ for o in objects), caches


def _run(folder: str, every: float, trace: bool) -> None:
    import tracemalloc

    path = os.path.join(folder, f"{os.getpid()}.jsonl")
    base_types: Counter[str] | None = None
    started = time.monotonic()
    while True:
        time.sleep(every)
        types, caches = _types()
        if base_types is None:
            base_types = types
        grown = Counter({k: v - base_types.get(k, 0) for k, v in types.items()})
        line: dict[str, object] = {
            "t": round(time.monotonic() - started),
            "rss_kb": _rss_kb(),
            "blocks": sys.getallocatedblocks(),
            "threads": threading.active_count(),
            "objects": sum(types.values()),
            "compiled_caches": caches,
            "malloc": _mallinfo(),
            "pymalloc": _pymalloc(),
            "types_grown": grown.most_common(25),
        }
        if trace and not tracemalloc.is_tracing():
            tracemalloc.start(1)  # from the first sample on: what the work allocated, not the imports
        elif trace:
            snap = tracemalloc.take_snapshot().filter_traces(
                [tracemalloc.Filter(False, tracemalloc.__file__)]
            )
            line["traced_kb"] = tracemalloc.get_traced_memory()[0] // 1024
            line["traced_peak_kb"] = tracemalloc.get_traced_memory()[1] // 1024
            line["lines_alive"] = [
                (str(s.traceback), s.size // 1024, s.count) for s in snap.statistics("lineno")[:25]
            ]
        with open(path, "a") as fh:
            fh.write(json.dumps(line) + "\n")


def _start() -> None:
    folder = os.environ.get("SMSDISPATCH_MEMPROBE")
    if not folder or "worker" not in sys.argv:
        return
    trace = os.environ.get("SMSDISPATCH_MEMPROBE_TRACE") == "1"
    every = float(os.environ.get("SMSDISPATCH_MEMPROBE_EVERY", "20"))
    threading.Thread(target=_run, args=(folder, every, trace), name="memprobe", daemon=True).start()


_start()
