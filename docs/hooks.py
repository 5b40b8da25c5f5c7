"""MkDocs hooks: the pages that are generated from the code, so that they
cannot drift from it.

- `cli.md`: `<!-- cli:help -->` becomes the argparse parser's own `--help`,
  and `<!-- cli:methods -->` the table of `--method` choices, read from
  `keras_aprelu.viz.__main__.METHODS`.
"""

import os

# argparse wraps its help at $COLUMNS; fix it, so the page is the same on
# every terminal.
os.environ["COLUMNS"] = "88"


def _cli_help():
    from keras_aprelu.viz import __main__ as cli

    return "```text\n" + cli._parser().format_help().rstrip() + "\n```"


def _cli_methods():
    from keras_aprelu.viz import __main__ as cli

    rows = [
        "| `--method` | Calls | Fixed arguments | Its options |",
        "|---|---|---|---|",
    ]
    for method, (function, fixed, options, _) in cli.METHODS.items():
        fixed = ", ".join(f"`{k}={v!r}`" for k, v in fixed.items()) or ""
        flags = ", ".join(f"`--{o.replace('_', '-')}`" for o in options) or ""
        link = f"[`viz.{function}`][keras_aprelu.viz.{function}]"
        rows.append(f"| `{method}` | {link} | {fixed} | {flags} |")
    return "\n".join(rows)


GENERATED = {
    "cli.md": {"<!-- cli:help -->": _cli_help, "<!-- cli:methods -->": _cli_methods},
}


def on_page_markdown(markdown, page, config, files):
    for marker, make in GENERATED.get(page.file.src_uri, {}).items():
        if marker not in markdown:
            raise ValueError(f"{page.file.src_uri} has lost its {marker} marker")
        markdown = markdown.replace(marker, make())
    return markdown


def _reference_recipe():
    """The table of examples/results/reference_recipe.json: one row per
    activation and noise level, the seeds' test accuracies and their mean."""
    import json
    import pathlib

    import numpy as np

    path = pathlib.Path(__file__).parents[1] / "examples/results/reference_recipe.json"
    records = json.loads(path.read_text())
    groups = {}
    for r in records:
        groups.setdefault(
            (r["snr_db"] is None, r["snr_db"], r["activation"]), []
        ).append(r)
    rows = [
        "| Noise | Activation | Seeds | Test accuracy per seed (%) | Mean (%) | "
        "Training accuracy, mean (%) | Steps | Backend |",
        "|---|---|---|---|---|---|---|---|",
    ]
    order = {"relu": 0, "prelu": 1, "aprelu": 2}
    for key in sorted(groups, key=lambda k: (k[0], k[1] or 0, order.get(k[2], 9))):
        group = sorted(groups[key], key=lambda r: r["seed"])
        test = np.array([r["test_accuracy"] for r in group]) * 100
        train = np.array([r["train_accuracy"] for r in group]) * 100
        mean = f"{test.mean():.2f}"
        if len(test) > 1:
            mean += f" ± {test.std(ddof=1):.2f}"
        level = "clean" if key[1] is None else f"{key[1]} dB"
        name = {"relu": "ReLU", "prelu": "PReLU", "aprelu": "APReLU"}[key[2]]
        seeds = ", ".join(str(r["seed"]) for r in group)
        per_seed = ", ".join(f"{t:.2f}" for t in test)
        steps = sorted({r["steps"] for r in group})
        backends = sorted({r["backend"] for r in group})
        rows.append(
            f"| {level} | {name} | {seeds} | {per_seed} | {mean} | "
            f"{train.mean():.2f} | {', '.join(map(str, steps))} | "
            f"{', '.join(backends)} |"
        )
    return "\n".join(rows)


GENERATED["evidence.md"] = {"<!-- evidence:reference-recipe -->": _reference_recipe}
