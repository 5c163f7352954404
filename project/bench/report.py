"""The report: versions, the machine, ``results.md`` and ``words_per_second.png``."""

import importlib.metadata
import os
import platform
import statistics
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from measure import Bench, System

VERSIONED = [
    "spacy-seqlab",
    "spacy",
    "thinc",
    "spacy-transformers",
    "spacy-llm",
    "torch",
    "transformers",
    "tokenizers",
    "peft",
    "accelerate",
    "numpy",
    "matplotlib",
]


def versions() -> Dict[str, Optional[str]]:
    found: Dict[str, Optional[str]] = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def machine(bench: Bench, load_start: Tuple[float, ...]) -> Dict[str, Any]:
    import torch

    cpu_model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    kept = [p for s in bench.systems.values() for p in s.kept]
    loads = [p.other_load for p in kept]
    return {
        "cores": os.cpu_count(),
        "cores_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu": cpu_model,
        "torch_threads": torch.get_num_threads(),
        "device": bench.args.device,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "platform": platform.platform(),
        "loadavg_start": load_start,
        "loadavg_end": os.getloadavg(),
        "other_load_cores_mean": round(statistics.mean(loads), 3) if loads else None,
        "other_load_cores_max": round(max(loads), 3) if loads else None,
        "passes_kept": len(kept),
        "passes_discarded_for_load": bench.retries_used,
        "max_load": bench.args.max_load,
    }


def plot(path: Path, systems: Dict[str, System]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [s for s in systems.values() if s.group != "scaling" and s.kept]
    colors = {"encoder": "#4C72B0", "decoder": "#DD8452", "training": "#55A868", "generation": "#C44E52"}
    fig, ax = plt.subplots(figsize=(9, 0.42 * len(shown) + 1.4))
    ys = list(range(len(shown)))[::-1]
    rates = [s.words / s.wall for s in shown]
    ax.barh(ys, rates, color=[colors.get(s.group, "grey") for s in shown])
    for y, rate in zip(ys, rates):
        ax.text(rate * 1.05, y, f"{rate:,.1f}", va="center", fontsize=8)
    ax.set_yticks(ys)
    ax.set_yticklabels([s.label for s in shown], fontsize=8)
    ax.set_xscale("log")
    ax.set_xlim(right=max(rates) * 4)
    ax.set_xlabel("words per second (median, log scale)")
    ax.set_title("spacy-seqlab benchmark, WNUT-16 test (untrained components)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown(results: Dict[str, Any]) -> str:
    m, s = results["machine"], results["settings"]
    lines = [
        "# spacy-seqlab benchmark results",
        "",
        f"{results['note']}",
        "",
        f"Run {results['started']} ({'quick' if s['quick'] else 'full'} settings, {results['seconds']:.0f} s). "
        f"Machine: {m['cores']} cores ({m['cpu']}), torch threads {m['torch_threads']}, device {m['device']}, "
        f"OMP_WAIT_POLICY={m['omp_wait_policy']}; other processes used {m['other_load_cores_mean']} cores on average "
        f"(max {m['other_load_cores_max']}) during the kept passes, {m['passes_discarded_for_load']} pass(es) "
        f"retried for load > {m['max_load']} cores; load average "
        f"{', '.join(f'{x:.2f}' for x in m['loadavg_start'])} at the start.",
        "",
        "## Ratios",
        "",
        *[
            f"Rows whose run column shows {started} were not re-run this time: measured then, other processes "
            f"using {machine['other_load_cores_mean']} cores on average."
            for started, machine in sorted(results.get("earlier_runs", {}).items())
        ],
        "",
        "Ratios are taken from wall-clock medians; the same ratio from process CPU-time medians is beside it",
        "(steadier when other processes share the cores, since it does not count time spent waiting for a core).",
        "",
        "| # | measurement | ratio | target | met | ratio (CPU time) | run |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in sorted(results["measurements"], key=lambda r: r["id"]):
        ratio = "n/a" if r["ratio"] is None else f"{r['ratio']:.3f}"
        cpu = "" if r.get("ratio_cpu") is None else f"{r['ratio_cpu']:.3f}"
        run = r.get("run", "this run")
        lines.append(
            f"| {r['id']} | {r['title']} | {ratio} | {r['target']} | {'yes' if r['met'] else '**no**'} | {cpu} "
            f"| {run} |"
        )
    lines += ["", "How each ratio is taken:", ""]
    lines += [f"- **{r['id']}**: {r['how']}." for r in sorted(results["measurements"], key=lambda r: r["id"])]
    lines += [
        "",
        "## Systems",
        "",
        "| system | docs | batch | words | words/s | words/CPU-s | median s | passes kept |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results["systems"].values():
        kept = sum(1 for p in r["passes"] if p["kept"])
        lines.append(
            f"| {r['label']} | {r.get('docs', 1)} | {r.get('batch_size', '')} | {r['words']:,} | "
            f"{r['words_per_s']:,.1f} | {r['words_per_cpu_s']:,.1f} | {r['median_wall_s']:.3f} | "
            f"{kept}/{len(r['passes'])} |"
        )
    gen = {k: v for k, v in results["systems"].items() if "inspected" in v and "generated_tokens" in v["inspected"]}
    if gen:
        each = "; ".join(
            f"{v['label']}: {v['inspected']['generated_tokens']} tokens generated, "
            f"{v['inspected']['forward_calls']} forward calls"
            for v in gen.values()
        )
        first = next(iter(gen.values()))
        lines += [
            "",
            f"Generation: {each}; {first['prompts']} prompts of {first['mean_prompt_tokens']} tokens on average.",
        ]
    if results["scaling"]:
        lengths = list(next(iter(results["scaling"].values()))["seconds_per_1k_tokens"])
        lines += [
            "",
            "## Seconds per 1k tokens by document length (wall-clock / CPU)",
            "",
            "| tagger | " + " | ".join(f"{int(n):,} tokens" for n in lengths) + " |",
        ]
        lines.append("| --- |" + " --- |" * len(lengths))
        for name, r in results["scaling"].items():
            cells = [f"{r['seconds_per_1k_tokens'][n]:.3f} / {r['cpu_seconds_per_1k_tokens'][n]:.3f}" for n in lengths]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if results["memory"]:
        lines += [
            "",
            "## Peak memory (one process each)",
            "",
            "| process | peak RSS MB | RSS after imports MB |",
            "| --- | --- | --- |",
        ]
        for r in results["memory"].values():
            lines.append(f"| {r['what']} | {r['peak_rss_mb']:,.0f} | {r['rss_after_imports_mb']:,.0f} |")
    lines += ["", "## Versions", "", ", ".join(f"{k} {v}" for k, v in results["versions"].items() if v), ""]
    lines += ["Settings: " + ", ".join(f"{k}={v}" for k, v in s.items()), ""]
    if results["errors"]:
        lines += ["## Errors", ""] + [f"- {e['phase']}: {e['error']}" for e in results["errors"]] + [""]
    return "\n".join(lines)


def carry_over(previous: Dict[str, Any], results: Dict[str, Any]) -> Dict[str, Any]:
    """``results`` with what ``previous`` (an earlier results.json in the same folder) measured and this run did
    not: its measurements, systems and memory probes, each marked with the run that measured it (``run``), so a
    run of a few phases updates their rows and keeps the others, dated. Nothing is carried across settings
    (quick or not, other models)."""
    same = ("quick", "encoder", "decoder")
    if previous.get("schema") != results["schema"] or any(
        previous.get("settings", {}).get(key) != results["settings"].get(key) for key in same
    ):
        return results
    measured = {m["id"] for m in results["measurements"]}
    carried = [
        {**m, "run": m.get("run", previous["started"])} for m in previous["measurements"] if m["id"] not in measured
    ]
    out = {**results, "measurements": sorted(results["measurements"] + carried, key=lambda r: r["id"])}
    for key in ("systems", "memory", "scaling"):
        old = {name: {**entry, "run": entry.get("run", previous["started"])} for name, entry in previous[key].items()}
        out[key] = {**{k: v for k, v in old.items() if k not in results[key]}, **results[key]}
    # The machine and load of each earlier run that still has rows here.
    runs = {**previous.get("earlier_runs", {}), previous["started"]: previous["machine"]}
    kept = {m["run"] for m in carried}
    out["earlier_runs"] = {started: machine for started, machine in runs.items() if started in kept}
    return out


def write(output: Path, results: Dict[str, Any], systems: Dict[str, System]) -> None:
    """``results.json``, ``results.md`` and (when anything was timed) ``words_per_second.png`` in ``output``."""
    import json

    output.mkdir(parents=True, exist_ok=True)
    (output / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf8")
    (output / "results.md").write_text(markdown(results), encoding="utf8")
    if systems:
        plot(output / "words_per_second.png", systems)
