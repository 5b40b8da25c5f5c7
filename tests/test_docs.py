"""The documentation site builds with no warning, and its API reference
documents every public name, with every argument."""

import importlib
import inspect
import os
import pathlib
import pkgutil
import re
import subprocess
import sys

import pytest

import keras_aprelu

pytestmark = pytest.mark.slow

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Builds the site once, as `make docs` does, and returns its folder."""
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1", TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", out],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    # Strict mode fails on a warning; the log says which.
    assert result.returncode == 0, result.stderr[-3000:]
    mkdocs_warnings = [
        line for line in result.stderr.splitlines() if line.startswith("WARNING -")
    ]
    assert mkdocs_warnings == []
    return out


def public_modules():
    """Every module a user imports: no `_` in its path, and an `__all__`."""
    modules = {"keras_aprelu": keras_aprelu}
    for info in pkgutil.walk_packages(keras_aprelu.__path__, "keras_aprelu."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        module = importlib.import_module(info.name)
        if hasattr(module, "__all__"):
            modules[info.name] = module
    return modules


def test_public_modules_are_the_documented_ones():
    assert sorted(public_modules()) == [
        "keras_aprelu",
        "keras_aprelu.activations",
        "keras_aprelu.callbacks",
        "keras_aprelu.layers",
        "keras_aprelu.viz",
        "keras_aprelu.viz.metrics",
        "keras_aprelu.viz.plotting",
    ]


def entries(site):
    """{anchor: the HTML of its entry} over every API page. An entry runs
    from its heading to the next heading of its level."""
    found = {}
    for page in sorted((site / "api").glob("*.html")):
        html = page.read_text()
        heads = list(re.finditer(r'<h(\d) id="(keras_aprelu[\w.]*)"', html))
        for i, head in enumerate(heads):
            level = head.group(1)
            end = next(
                (h.start() for h in heads[i + 1 :] if h.group(1) <= level),
                len(html),
            )
            found[head.group(2)] = html[head.start() : end]
        # A module documented without a heading of its own (the page's
        # title names it) has an anchor, and its page is its entry.
        for anchor in re.findall(r'<a id="(keras_aprelu[\w.]*)"', html):
            found.setdefault(anchor, html)
    return found


def resolve(path):
    """`keras_aprelu.viz.hires_cam` -> the object, or None."""
    parts = path.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for part in parts[split:]:
            obj = getattr(obj, part, None)
        return obj
    return None


def test_every_public_name_has_an_api_entry(site):
    documented = entries(site)
    objects = {id(resolve(anchor)) for anchor in documented}
    missing = [
        f"{name}.{attr}"
        for name, module in public_modules().items()
        for attr in module.__all__
        if id(getattr(module, attr)) not in objects
    ]
    assert missing == []
    # Each page's own module has its entries under its own path.
    for name in (
        "keras_aprelu.viz",
        "keras_aprelu.viz.metrics",
        "keras_aprelu.callbacks",
    ):
        for attr in public_modules()[name].__all__:
            assert f"{name}.{attr}" in documented


def test_every_argument_is_documented(site):
    """Each function and class lists every parameter of its signature in
    its entry, with the text from the docstring's Args (shared ones
    included)."""
    undocumented = []
    for anchor, html in entries(site).items():
        obj = resolve(anchor)
        if not callable(obj) or inspect.ismodule(obj):
            continue
        target = obj.__init__ if inspect.isclass(obj) else obj
        for name, parameter in inspect.signature(target).parameters.items():
            if name == "self":
                continue
            shown = f"**{name}" if parameter.kind is parameter.VAR_KEYWORD else name
            if f"<code>{shown}</code>" not in html:
                undocumented.append(f"{anchor}({shown})")
    assert undocumented == []


def test_the_acceptance_pages_exist(site):
    assert (site / "index.html").stat().st_size > 0
    documented = entries(site)
    # The three named in the issue, with a parameter each and their text.
    assert "Draelos and Carin" in documented["keras_aprelu.viz.hires_cam"]
    assert "<code>layer</code>" in documented["keras_aprelu.viz.hires_cam"]
    assert "<code>hidden_units</code>" in documented["keras_aprelu.layers.APReLU"]
    assert (
        "<code>on_dead</code>" in documented["keras_aprelu.callbacks.ActivationMonitor"]
    )
    # A sentence under Returns: is a paragraph (docs/templates), not a
    # one-item list that starts with a dash.
    returns = documented["keras_aprelu.viz.hires_cam"].split("Returns:", 1)[1]
    returns = returns.split("Cost:", 1)[0]
    assert "float32 array of shape" in returns
    assert "<li" not in returns and "–" not in returns


def test_keras_examples_render_as_code(site):
    # Keras's "Example:" + blank line + >>> lines: highlighted as a Python
    # session (docs/griffe_keras_examples.py), not as nested quotes.
    documented = entries(site)
    for name in ("keras_aprelu.layers.APReLU", "keras_aprelu.recalibrate_batch_norm"):
        example = documented[name].split("Examples:", 1)[1]
        assert '<span class="gp">&gt;&gt;&gt; </span>' in example, name
        assert "<blockquote>" not in documented[name], name


def test_keras_examples_rewrite_only_example_sections():
    sys.path.insert(0, str(REPO / "docs"))
    from griffe_keras_examples import keras_examples

    text = "Sum.\n\nExample:\n\n>>> 1 + 1\n2\n\nReference:\n    A paper."
    assert keras_examples(text) == (
        "Sum.\n\nExamples:\n    >>> 1 + 1\n    2\n\nReference:\n    A paper."
    )
    fenced = "Example:\n\n```python\nx = 1\n```"
    assert keras_examples(fenced) == fenced


def test_an_attribute_shows_its_own_docstring_not_its_types(site):
    # keras_aprelu.__version__ is a str: the inspected object's docstring
    # is str's; the page shows the one under the assignment
    # (docs/griffe_attribute_docs.py).
    version = entries(site)["keras_aprelu.__version__"]
    assert "as `pip show keras-aprelu` reports it" in version or (
        "as <code>pip show keras-aprelu</code> reports it" in version
    )
    assert "Create a new string object" not in version


def test_the_cli_page_is_the_parser(site):
    """The command line page is generated from the parser itself."""
    from keras_aprelu.viz import __main__ as cli

    html = (site / "cli.html").read_text()
    for action in cli._parser()._actions:
        for flag in action.option_strings:
            assert flag in html, flag
    for method in cli.METHODS:
        assert f"<code>{method}</code>" in html, method


def test_shared_args_fills_in_and_checks_the_args_section():
    from keras_aprelu.viz import _docs

    @_docs.shared_args("model", "batch_size", notes={"model": "One input."})
    def method(model, steps=2, *, batch_size=64):
        """Does it.

        Args:
            steps: Steps.

        Returns:
            Maps.
        """

    doc = method.__doc__
    assert doc.index("    model: A Keras 3 model") < doc.index("    steps: Steps.")
    assert doc.index("    steps: Steps.") < doc.index("    batch_size: Inputs per")
    assert "as `predict` would). One input." in " ".join(doc.split())
    assert doc.endswith("Returns:\n    Maps.\n")

    with pytest.raises(ValueError, match=r"describe its parameters"):

        @_docs.shared_args("model")
        def undescribed(model, steps):
            """Does it.

            Args:
                Nothing else.
            """

    with pytest.raises(ValueError, match=r"Received: \['modle'\]"):
        _docs.shared_args("modle")


def test_shared_args_fills_an_empty_returns_section_and_only_that():
    from keras_aprelu.viz import _docs

    @_docs.shared_args("model", returns="cam")
    def method(model):
        """Does it.

        Args:

        Returns:

        Cost: one pass.
        """

    doc = method.__doc__
    returns = doc[doc.index("Returns:\n") : doc.index("Cost:")]
    assert " ".join(returns.split()) == "Returns: " + " ".join(
        _docs.RETURNS["cam"].split()
    )
    assert returns.splitlines()[1].startswith("    float32 array")
    assert doc.endswith("\n\nCost: one pass.\n")

    with pytest.raises(ValueError, match=r"empty `Returns:`"):

        @_docs.shared_args("model", returns="cam")
        def described(model):
            """Does it.

            Args:

            Returns:
                Its own.
            """

    with pytest.raises(ValueError, match=r"Received: \['heatmap'\]"):
        _docs.shared_args("model", returns="heatmap")
