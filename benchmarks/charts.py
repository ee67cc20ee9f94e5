"""The plots of BENCHMARKS.md (matplotlib, drawn from an area's stored result)."""

from __future__ import annotations

from pathlib import Path


def plot_sustained(runs: list, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = sorted(runs, key=lambda r: r["app_events_per_s"])
    offered = [r["app_events_per_s"] for r in runs]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(offered, [r["processed_app_events_per_s"] for r in runs], "o-", label="processed")
    a.plot(offered, offered, "--", color="grey", label="offered (= keeping up)")
    a.set(xlabel="offered app events/s", ylabel="app events/s", title="event_aggregation: processed vs offered")
    a.legend()
    b.plot(offered, [r["batch_ms_p95"] / 1000 for r in runs], "o-", label="micro-batch p95")
    b.plot(offered, [r["batch_ms_p50"] / 1000 for r in runs], "o-", label="micro-batch p50")
    b.axhline(runs[0]["trigger_s"], linestyle="--", color="grey", label="trigger interval")
    b.set(xlabel="offered app events/s", ylabel="seconds", title="micro-batch duration vs the trigger")
    b.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_batch(b: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    jobs = [k for k, v in b.items() if isinstance(v, dict) and "spark_s" in v]
    x = range(len(jobs))
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.bar([i - 0.2 for i in x], [b[j]["spark_s"] for j in jobs], 0.4, label="Spark (2-worker cluster)")
    ax.bar([i + 0.2 for i in x], [b[j]["duckdb_s"] for j in jobs], 0.4, label="DuckDB (same files)")
    ax.set_xticks(list(x), jobs)
    ax.set(ylabel="seconds", title=f"Batch jobs over {b['events']:,} events")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


PLOTTERS = {"sustained": plot_sustained, "batch": plot_batch}
