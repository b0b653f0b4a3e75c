"""The result as a picture: samples/s against batch size."""

from zoo.export.bench.settings import RUNTIMES


def plot(result: dict, path) -> None:
    """One panel per model and thread count; colour = part, solid = onnxruntime, dashed = PyTorch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from zoo.export.parts import PART_NAMES

    rows = result["rows"]
    models = list(result["artifacts"])
    threads = sorted({r["threads"] for r in rows})
    fig, axes = plt.subplots(
        len(threads), len(models), figsize=(3.4 * len(models), 3.0 * len(threads)), squeeze=False, sharex=True
    )
    colours = dict(zip(PART_NAMES, ("tab:blue", "tab:orange", "tab:green")))
    styles = dict(zip(RUNTIMES, ("-", "--")))
    for i, t in enumerate(threads):
        for j, model in enumerate(models):
            ax = axes[i][j]
            for part in result["artifacts"][model]:
                for rt, style in styles.items():
                    pts = sorted(
                        (r["batch"], r["samples_per_second"])
                        for r in rows
                        if r["model"] == model and r["part"] == part and r["runtime"] == rt and r["threads"] == t
                    )
                    if pts:
                        ax.plot(
                            *zip(*pts),
                            style,
                            marker="o",
                            ms=3,
                            color=colours.get(part),
                            label=f"{part} {'ORT' if rt == 'onnxruntime' else 'torch'}",
                        )
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_title(f"{model}, {t} thread{'s' if t > 1 else ''}", fontsize=9)
            ax.grid(True, which="both", alpha=0.3)
            if i == len(threads) - 1:
                ax.set_xlabel("batch size")
            if j == 0:
                ax.set_ylabel("samples / s")
    axes[0][0].legend(fontsize=6, loc="best")
    fig.suptitle(
        f"onnxruntime (solid) vs PyTorch eager (dashed), {result['machine']['cpu']}, {result['machine']['date']}",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90, format="png")
    plt.close(fig)
