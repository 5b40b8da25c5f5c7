"""MkDocs hooks: the pages that are generated from the code, so that they
cannot drift from it.

- `cli.md`: `<!-- cli:help -->` becomes the argparse parser's own `--help`,
  and `<!-- cli:methods -->` the table of `--method` choices, read from
  `keras_aprelu.viz.__main__.METHODS`.
"""

import os

# argparse wraps its help at $COLUMNS; fix it, so the page is the same on
# every terminal.
os.environ["COLUMNS"] = "80"


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


def _records():
    """examples/records.py, which reads and summarizes the committed
    records for the runners, the notebooks and these pages."""
    import pathlib
    import sys

    examples = str(pathlib.Path(__file__).parents[1] / "examples")
    if examples not in sys.path:
        sys.path.insert(0, examples)
    import records

    return records


def _reference_recipe():
    """The table of examples/results/reference_recipe.json, by the same
    code as notebook 05."""
    records = _records()
    return records.markdown_table(records.load())


def _normalization_study():
    """The table of examples/results/normalization_study.json, as
    `normalization_study.py --table` prints it."""
    records = _records()
    return records.study_table(records.load(records.STUDY))


GENERATED["evidence.md"] = {"<!-- evidence:reference-recipe -->": _reference_recipe}
GENERATED["layers.md"] = {"<!-- layers:normalization-study -->": _normalization_study}
