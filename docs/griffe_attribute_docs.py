"""A griffe extension for the API reference: module attributes' own docs.

The site reads the imported objects (`force_inspection`, because viz's
docstrings are completed at import time), and an imported attribute such
as `keras_aprelu.__version__` is a `str`, whose docstring is `str`'s. This
gives such an attribute the docstring written under its assignment in the
source, as static analysis would, and none if there is none.
"""

import ast

import griffe


def source_docstring(path, name):
    """The string literal right after `name = ...` at the top of the module
    at `path`, or None."""
    body = ast.parse(path.read_text()).body
    for statement, following in zip(body, body[1:], strict=False):
        targets = getattr(statement, "targets", [])
        if any(getattr(t, "id", None) == name for t in targets):
            value = getattr(following, "value", None)
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                return value.value
    return None


class AttributeDocs(griffe.Extension):
    def on_attribute_instance(self, *, attr, **kwargs):
        builtin = {type(v).__doc__ for v in ("", 0, 0.0, (), [], {})}
        if attr.docstring is None or attr.docstring.value.strip() not in {
            (d or "").strip() for d in builtin
        }:
            return
        text = source_docstring(attr.filepath, attr.name)
        attr.docstring = griffe.Docstring(text, parent=attr) if text else None
