"""The one-class benchmark's Markdown and plot (benchmarks.quality.one_class writes the results)."""

from pathlib import Path

NAMES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}


def _percent(value) -> str:
    return "" if value is None else f"{100 * value:.1f}"


def _summary(result: dict) -> list:
    datasets = result["protocol"]["datasets"]
    lines = [
        "| method | "
        + " | ".join(f"{NAMES[d]} mean AUROC" for d in datasets)
        + " | Fashion-MNIST -> MNIST AUROC | settings (`--set`) | epochs | wall time |",
        "|---|" + "---:|" * len(datasets) + "---:|---|---:|---:|",
    ]
    for m in result["models"]:
        means = " | ".join(_percent(m["datasets"][d]["mean_auroc"]) for d in datasets)
        f2m = _percent(m.get("fashion_to_mnist", {}).get("auroc"))
        sets = " ".join(f"{k}={v}" for k, v in m["settings"].items())
        lines.append(
            f"| zoo {m['model']}, its own score | {means} | {f2m} | {sets} | {m['epochs']} | "
            f"{m['seconds'] / 60:.1f} min |"
        )
    for a in result["anchors"]:
        values = {"mnist": a["mnist"], "fashion-mnist": a["fashion_mnist"]}
        lines.append(
            f"| {a['method']} ({a['source']}) | " + " | ".join(f"{values[d]:.1f}" for d in datasets) + " | | | | |"
        )
    return lines


def _per_class(result: dict) -> list:
    lines = []
    for d in result["protocol"]["datasets"]:
        classes = [str(c) for c in result["protocol"]["classes"]]
        lines += [
            "",
            f"### {NAMES[d]}: AUROC per normal class (%)",
            "",
            "| model | " + " | ".join(classes) + " | mean |",
            "|---|" + "---:|" * (len(classes) + 1),
        ]
        for m in result["models"]:
            per = m["datasets"][d]["per_class"]
            lines.append(
                f"| {m['model']} | "
                + " | ".join(_percent(per[c]["auroc"]) for c in classes)
                + f" | {_percent(m['datasets'][d]['mean_auroc'])} |"
            )
    return lines


def _selection(result: dict) -> list:
    lines = [
        "",
        "## Settings chosen on held-out training data",
        "",
        "| model | candidate | validation AUROC per class | mean | chosen |",
        "|---|---|---|---:|---|",
    ]
    for m in result["models"]:
        chosen = m["selection"]["chosen"]
        for t in m["selection"]["candidates"]:
            per = ", ".join(f"{c}: {_percent(v)}" for c, v in zip(t["classes"], t["validation_auroc"]))
            sets = " ".join(f"{k}={v}" for k, v in t["settings"].items())
            lines.append(
                f"| {m['model']} | {sets} | {per} | {_percent(t['mean'])} | "
                f"{'yes' if t['settings'] == chosen else ''} |"
            )
    return lines


def markdown(result: dict) -> str:
    m, p = result["machine"], result["protocol"]
    header = [
        "# One-class anomaly detection" + (" (--quick: a smoke run, not a measurement)" if result["quick"] else ""),
        "",
        f"{m['gpu'] or m['cpu']}, {m['cores']} cores, torch {m['versions']['torch']}, {m['threads']} torch threads, "
        f"{m['date']}; {result['seconds'] / 60:.1f} min in all.",
        "",
        f"Protocol: for each normal class ({', '.join(map(str, p['classes']))}), train on that class's training "
        "images only, score the whole test split with the model's own score, AUROC with that class as normal; "
        "the mean over the classes run. Fashion-MNIST -> MNIST: trained on Fashion-MNIST"
        + (f" (its first {p['fashion_subset']:,} training images)" if p["fashion_subset"] else "")
        + ", its test images normal, MNIST's test images the anomalies. Settings chosen on MNIST classes "
        f"{', '.join(map(str, p['select_classes']))} only, on held-out training data: "
        f"{100 * p['validation_holdout']:.0f}% "
        f"of the class's training images (never trained on) against {p['validation_anomalies']:,} training images of "
        "the other classes"
        + (f", each candidate trained {p['select_epochs']} epoch(s)" if p.get("select_epochs") else "")
        + ". The test split is never used to choose anything.",
        "",
        f"Models run: {', '.join(m['model'] for m in result['models'])} (asked: {', '.join(result['models_asked'])}).",
        "",
    ]
    return "\n".join(header + _summary(result) + _per_class(result) + _selection(result)) + "\n"


def plot(result: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    from zoo.core.atomic import atomic_write

    datasets = result["protocol"]["datasets"]
    fig, axes = plt.subplots(1, len(datasets), figsize=(6 * len(datasets), 4.2), squeeze=False)
    classes = [str(c) for c in result["protocol"]["classes"]]
    width = 0.8 / max(1, len(result["models"]))
    for ax, d in zip(axes[0], datasets):
        for i, m in enumerate(result["models"]):
            values = [100 * m["datasets"][d]["per_class"][c]["auroc"] for c in classes]
            ax.bar(
                [k + i * width for k in range(len(classes))],
                values,
                width,
                label=f"{m['model']} (mean {100 * m['datasets'][d]['mean_auroc']:.1f})",
            )
        ax.set_xticks([k + width * (len(result["models"]) - 1) / 2 for k in range(len(classes))], classes)
        ax.set_ylim(0, 100)
        ax.axhline(50, color="grey", linestyle="--", linewidth=0.8)  # chance
        ax.set_xlabel("normal class")
        ax.set_ylabel("AUROC (%)")
        ax.set_title(f"{NAMES[d]}: one class normal, the rest anomalies")
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=3)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)
    return path
