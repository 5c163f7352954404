"""Timing and machine load: a timed pass, a system's passes, and the ``Bench`` that interleaves and records them.

Each timed pass records wall-clock and process CPU time, and how many cores other processes used meanwhile
(from /proc/stat); a pass taken under load is retried and marked (see ``Bench.one_pass``).
"""

import argparse
import gc
import os
import resource
import statistics
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

CLK_TCK = os.sysconf("SC_CLK_TCK")
MIN_JUDGED_S = 0.5


def machine_busy_seconds() -> float:
    """CPU-seconds all processes have spent busy since boot (first line of /proc/stat)."""
    try:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return float("nan")
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values[:8]) - idle) / CLK_TCK


def own_cpu_seconds() -> float:
    """User + system CPU time of this process, all threads (nanosecond clock: ``os.times`` counts 10 ms ticks,
    too coarse for the short passes of a quick run on tiny models)."""
    return time.process_time()


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


@dataclass
class Pass:
    wall: float
    cpu: float
    other_load: float  # cores used by other processes during the pass
    kept: bool = True
    info: Dict[str, Any] = field(default_factory=dict)  # what the pass itself reported (e.g. prefill time)


def timed(fn: Callable[[], Any]) -> Tuple[Pass, Any]:
    gc.collect()
    busy0, cpu0, t0 = machine_busy_seconds(), own_cpu_seconds(), time.perf_counter()
    result = fn()
    t1, cpu1, busy1 = time.perf_counter(), own_cpu_seconds(), machine_busy_seconds()
    wall, cpu = t1 - t0, cpu1 - cpu0
    other = max(0.0, (busy1 - busy0) - cpu) / wall if wall > 0 else 0.0
    info = dict(result["info"]) if isinstance(result, dict) and isinstance(result.get("info"), dict) else {}
    return Pass(wall=wall, cpu=cpu, other_load=other, info=info), result


@dataclass
class System:
    """Something timed: ``prepare()`` (untimed) makes the input of ``run(input)`` (timed)."""

    name: str
    label: str
    run: Callable[[Any], Any]
    words: int  # gold words processed by one pass
    prepare: Callable[[], Any] = lambda: None
    group: str = ""
    passes: List[Pass] = field(default_factory=list)
    extra: Dict[str, Any] = field(default_factory=dict)
    inspect: Optional[Callable[[Any], Dict[str, Any]]] = None  # reads facts from a pass's output (untimed)

    @property
    def kept(self) -> List[Pass]:
        return [p for p in self.passes if p.kept]

    @property
    def wall(self) -> float:
        return statistics.median(p.wall for p in self.kept)

    @property
    def cpu(self) -> float:
        return statistics.median(p.cpu for p in self.kept)

    def summary(self) -> Dict[str, Any]:
        return {
            "label": self.label,
            "group": self.group,
            "words": self.words,
            "median_wall_s": round(self.wall, 4),
            "median_cpu_s": round(self.cpu, 4),
            "words_per_s": round(self.words / self.wall, 2),
            "words_per_cpu_s": round(self.words / self.cpu, 2) if self.cpu > 0 else None,
            "passes": [_rounded(asdict(p)) for p in self.passes],
            **self.extra,
        }


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.systems: Dict[str, System] = {}
        self.measurements: List[Dict[str, Any]] = []
        self.errors: List[Dict[str, str]] = []
        self.scaling: Dict[str, Any] = {}
        self.memory: Dict[str, Any] = {}
        self.retries_used = 0

    def log(self, message: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    def one_pass(self, system: System, keep: bool = True) -> Pass:
        data = system.prepare()
        p, output = timed(lambda: system.run(data))
        tries = 0
        # /proc/stat counts in 10 ms ticks: the load of a pass shorter than MIN_JUDGED_S is too coarse to judge.
        while (
            keep
            and p.wall >= MIN_JUDGED_S
            and p.other_load > self.args.max_load
            and tries < self.args.retries
            and self.retries_used < self.args.retry_budget
        ):
            p.kept = False
            system.passes.append(p)
            self.retries_used += 1
            tries += 1
            retry_data = system.prepare()
            p, output = timed(lambda retry_data=retry_data: system.run(retry_data))
        if keep:
            system.passes.append(p)
            if system.inspect is not None and "inspected" not in system.extra:
                system.extra["inspected"] = system.inspect(output)
        return p

    def compare(self, systems: Sequence[System], runs: Optional[int] = None, warmup: Optional[int] = None) -> None:
        """Warm up, then interleave the systems' timed passes: A B, B A, A B, ..."""
        runs = self.args.runs if runs is None else runs
        warmup = self.args.warmup if warmup is None else warmup
        for system in systems:
            self.systems[system.name] = system
            for _ in range(warmup):
                self.one_pass(system, keep=False)
        for r in range(runs):
            for system in systems if r % 2 == 0 else list(reversed(systems)):
                p = self.one_pass(system)
                rate, cores = system.words / p.wall, p.cpu / p.wall
                self.log(f"  {system.name}: {rate:,.1f} words/s (cpu {cores:.2f} cores, others {p.other_load:.2f})")

    def measure(
        self,
        key: str,
        title: str,
        ratio: Optional[float],
        op: str,
        target: float,
        how: str,
        ratio_cpu: Optional[float] = None,
        **details: Any,
    ) -> None:
        """Record a ratio (from wall-clock medians; ``ratio_cpu``: the same from process CPU-time medians)."""
        met = None if ratio is None else (ratio >= target if op == ">=" else ratio <= target)
        self.measurements.append(
            {
                "id": key,
                "title": title,
                "ratio": None if ratio is None else round(float(ratio), 4),
                "target": f"{op} {target:g}",
                "target_op": op,
                "target_value": target,
                "met": bool(met) if met is not None else False,
                "ratio_cpu": None if ratio_cpu is None else round(float(ratio_cpu), 4),
                "met_cpu": None
                if ratio_cpu is None
                else bool(ratio_cpu >= target if op == ">=" else ratio_cpu <= target),
                "how": how,
                **details,
            }
        )
        shown = ratio if ratio is None else round(ratio, 3)
        self.log(f"{key} {title}: {shown} (target {op} {target:g}) {'met' if met else 'NOT met'}")

    def phase(self, name: str, fn: Callable[[], None]) -> None:
        self.log(f"phase {name}")
        start = time.perf_counter()
        try:
            fn()
        except Exception as err:  # one broken phase must not hide the others' numbers
            self.errors.append(
                {"phase": name, "error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()}
            )
            self.log(f"phase {name} FAILED: {err}")
        self.log(f"phase {name} took {time.perf_counter() - start:.0f} s")
        gc.collect()
