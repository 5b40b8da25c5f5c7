"""The records of `reproduce.py`: read, written and summarized in one place,
for the runner, notebook 05 and the documentation's evidence table.

NumPy and the standard library only, so that reading them needs no Keras.
"""

import json
import os
import pathlib

import numpy as np

RESULTS = pathlib.Path(__file__).resolve().parent / "results" / "reference_recipe.json"
# The records of normalization_study.py.
STUDY = RESULTS.parent / "normalization_study.json"
KEYS = (
    "activation",
    "snr_db",
    "seed",
    "steps",
    "epochs",
    "train_accuracy",
    "test_accuracy",
    "seconds",
    "backend",
    "normalization",
)
NAMES = {"relu": "ReLU", "prelu": "PReLU", "aprelu": "APReLU"}
NORMALIZATION_NAMES = {
    "batch": "batch norm",
    "layer": "layer norm",
    "none": "no norm",
    "batch_renorm": "batch renorm",
}


def load(path=RESULTS):
    """The list of records in `path`; [] when it does not exist yet."""
    path = pathlib.Path(path)
    if not path.exists():
        return []
    records = json.loads(path.read_text())
    if not isinstance(records, list):
        raise ValueError(
            f"`--results` must hold a JSON list of records. Received: {path}"
        )
    for record in records:
        if "activation" in record:
            record["normalization"] = normalization(record)
    return records


def normalization(record):
    """The normalization of APReLU's sub-network in `record` (None for the
    other activations). Records written before APReLU had a choice ran the
    paper's batch norms."""
    if "normalization" in record:
        return record["normalization"]
    return "batch" if record["activation"] == "aprelu" else None


def save(path, records):
    """Writes `records` atomically: a run stopped while writing loses
    nothing that was written before."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(records, indent=1) + "\n")
    os.replace(partial, path)


def level_name(snr_db):
    return "clean" if snr_db is None else f"{snr_db:g} dB"


def activation_name(activation, normalization):
    """ "ReLU", "PReLU", or APReLU with the normalization of its
    sub-network: "APReLU (batch norm)" is the paper's."""
    if activation != "aprelu":
        return NAMES[activation]
    return f"APReLU ({NORMALIZATION_NAMES[normalization]})"


def summary(records):
    """One row per (noise level, activation, normalization): noisy levels
    first, then clean; ReLU, PReLU, APReLU (the paper's batch norms first).
    Accuracies in %; `std` is the sample standard deviation over the seeds
    (None for one seed)."""
    groups = {}
    for record in records:
        cell = (record["snr_db"], record["activation"], normalization(record))
        groups.setdefault(cell, []).append(record)
    order = list(NAMES)
    norms = [None, *NORMALIZATION_NAMES]

    def key(item):
        snr_db, activation, norm = item
        return (snr_db is None, snr_db or 0, order.index(activation), norms.index(norm))

    rows = []
    for snr_db, activation, norm in sorted(groups, key=key):
        group = groups[(snr_db, activation, norm)]
        group = sorted(group, key=lambda r: r["seed"])
        test = 100 * np.array([r["test_accuracy"] for r in group])
        rows.append(
            {
                "level": level_name(snr_db),
                "activation": activation_name(activation, norm),
                "seeds": [r["seed"] for r in group],
                "test": [float(t) for t in test],
                "mean": float(test.mean()),
                "std": float(test.std(ddof=1)) if len(test) > 1 else None,
                "train_mean": float(
                    100 * np.mean([r["train_accuracy"] for r in group])
                ),
                "steps": sorted({r["steps"] for r in group}),
                "backends": sorted({r["backend"] for r in group}),
            }
        )
    return rows


def markdown_table(records):
    """`summary` as a Markdown table."""
    lines = [
        "| Noise | Activation | Seeds | Test accuracy per seed (%) | Mean (%) | "
        "Training accuracy, mean (%) | Steps | Backend |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in summary(records):
        mean = f"{row['mean']:.2f}"
        if row["std"] is not None:
            mean += f" ± {row['std']:.2f}"
        lines.append(
            f"| {row['level']} | {row['activation']} | "
            f"{', '.join(map(str, row['seeds']))} | "
            f"{', '.join(f'{t:.2f}' for t in row['test'])} | {mean} | "
            f"{row['train_mean']:.2f} | {', '.join(map(str, row['steps']))} | "
            f"{', '.join(row['backends'])} |"
        )
    return "\n".join(lines)


def study_table(found):
    """The records of `normalization_study.py` as a Markdown table: mean ±
    std over the seeds per (task, backend, variant), in %."""
    groups = {}
    for r in found:
        variant = r["normalization"] or r["activation"]
        groups.setdefault((r["task"], r["backend"], variant), []).append(r)
    lines = [
        "| Task (steps) | Backend | Sub-network (seeds) | Inference (%) "
        "| Training mode (%) | Recalibrated (%) |",
        "|---|---|---|---|---|---|",
    ]
    order = ["relu", "batch", "batch_renorm", "layer", "none"]
    for (task, backend, variant), group in sorted(
        groups.items(), key=lambda g: (g[0][0], g[0][1], order.index(g[0][2]))
    ):

        def cell(name, group=group):
            v = 100 * np.array([r[name] for r in group])
            return (
                f"{v.mean():.1f} ± {v.std(ddof=1):.1f}" if len(v) > 1 else f"{v[0]:.1f}"
            )

        label = "ReLU" if variant == "relu" else f"`{variant}`"
        lines.append(
            f"| {task} ({group[0]['steps']:,}) | {backend} | {label} ({len(group)}) | "
            f"{cell('inference_accuracy')} | {cell('training_accuracy')} | "
            f"{cell('recalibrated_accuracy')} |"
        )
    return "\n".join(lines)
