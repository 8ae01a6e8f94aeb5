"""Grouped bar charts of bench results (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _grouped(table: list[dict], column: str) -> tuple[list[str], dict[str, list[float]]]:
    models = list(dict.fromkeys(row["model"] for row in table))
    series: dict[str, list[float]] = {}
    for row in table:
        if row[column]:
            values = series.setdefault(row["contender"], [float("nan")] * len(models))
            values[models.index(row["model"])] = float(row[column])
    return models, series


def _bar_chart(table, column: str, ylabel: str, path: Path, log: bool, baseline=None) -> None:
    plt = _pyplot()
    models, series = _grouped(table, column)
    figure, axes = plt.subplots(figsize=(max(6.0, 1.8 * len(models) + 2), 4.5))
    width = 0.8 / max(len(series), 1)
    for index, (name, values) in enumerate(series.items()):
        positions = [m + index * width for m in range(len(models))]
        axes.bar(positions, values, width, label=name)
    axes.set_xticks([m + 0.4 - width / 2 for m in range(len(models))], models)
    axes.set_ylabel(ylabel)
    if log:
        axes.set_yscale("log")
    if baseline is not None:
        axes.axhline(baseline, color="black", linewidth=0.8)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def plot_latency(table, path: Path) -> None:
    _bar_chart(table, "median_ms", "median latency (ms, log scale)", path, log=True)


def plot_speedup(table, path: Path) -> None:
    _bar_chart(
        table, "speedup_vs_ort", "speed-up vs ONNX Runtime (x)", path, log=True, baseline=1.0
    )
