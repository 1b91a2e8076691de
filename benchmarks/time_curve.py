"""What an evening of CPU buys: the default recipe trained by time on a real pair, scored on the
held-out cut, one model per budget; a table and a plot.

    .venv/bin/python benchmarks/time_curve.py --workspace WS [--pair reagan,lieu]
        [--minutes 15,30,60,120] [--pipeline debate] [--plot docs/images/time_curve.png]

Each budget is a `benchmarks/real_pair.py --minutes N` run (its own model, `t<N>`, in the
same workspace: the crops and the cut are made once), so every number comes from the same
commands a user types. Budgets already scored (eval/real_t<N>.json) are not run again; a
run stopped part-way resumes. The table is printed and written beside the plot as JSON.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# (report key, label, format): what the table and plot show, overall on the held-out cut.
MEASURES = (
    ("identity_emb_acc", "identity by the embedding", "{:.1%}"),
    ("mouth_corr", "mouth follows the source (r)", "{:.2f}"),
    ("pose_err_deg", "pose error, deg", "{:.2f}"),
    ("sharpness_ratio", "sharpness / source's", "{:.2f}"),
    ("jitter_ratio", "jitter / source's", "{:.2f}"),
)


def run_budget(workspace: Path, pair: str, pipeline: str, minutes: float) -> dict:
    model = f"t{minutes:g}"
    report = workspace / "eval" / f"real_{model}.json"
    if not report.is_file():
        for stage in ("cut", "extract", "train", "render", "eval"):
            if stage == "extract" and (workspace / "faces").is_dir():
                continue  # the crops are the same for every budget
            cmd = [sys.executable, str(REPO / "benchmarks" / "real_pair.py"), "--workspace", str(workspace),
                   "--pair", pair, "--pipeline", pipeline, "--model", model,
                   "--minutes", f"{minutes:g}", "--stage", stage]
            if subprocess.run(cmd).returncode != 0:
                sys.exit(f"{' '.join(cmd)} failed")
    return json.loads(report.read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workspace", required=True, type=Path)
    parser.add_argument("--pair", default="reagan,lieu")
    parser.add_argument("--pipeline", default="debate")
    parser.add_argument("--minutes", default="15,30,60,120")
    parser.add_argument("--plot", type=Path, default=None)
    args = parser.parse_args(argv)
    budgets = [float(m) for m in args.minutes.split(",")]
    rows = {m: run_budget(args.workspace.resolve(), args.pair, args.pipeline, m)["overall"] for m in budgets}
    header = "| measure | " + " | ".join(f"{m:g} min" for m in budgets) + " |"
    print(header)
    print("| --- |" + " ---: |" * len(budgets))
    for key, label, fmt in MEASURES:
        cells = [fmt.format(rows[m][key]) if rows[m].get(key) is not None else "-" for m in budgets]
        print(f"| {label} | " + " | ".join(cells) + " |")
    if args.plot is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, len(MEASURES), figsize=(3.2 * len(MEASURES), 2.8))
        for ax, (key, label, _) in zip(axes, MEASURES):
            ax.plot(budgets, [rows[m].get(key) for m in budgets], "o-")
            ax.set_title(label, fontsize=9)
            ax.set_xlabel("training minutes (2 cores)", fontsize=8)
        fig.suptitle(f"{args.pipeline} on {args.pair}, held-out cut", fontsize=10)
        fig.tight_layout()
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.plot, dpi=90)
        args.plot.with_suffix(".json").write_text(json.dumps({f"{m:g}": rows[m] for m in budgets}, indent=1))
        print(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
