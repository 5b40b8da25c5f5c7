"""A griffe extension for the API reference: Keras's "Example:" sections.

Keras writes `Example:`, a blank line, then `>>>` lines at the section's
own indentation. Griffe's Google-style parser wants the lines of a section
indented under its title, so it took them for text, and Markdown drew
`>>>` as three nested quotes. This rewrites each such block as an
`Examples:` section, indented, which griffe renders as code; the
docstrings themselves stay in Keras's format (and run as doctests).
"""

import re

import griffe

_TITLE = re.compile(r"^[A-Z][A-Za-z ]*:$")


def keras_examples(text):
    lines = text.split("\n")
    out = []
    i = 0
    while i < len(lines):
        if lines[i].strip() != "Example:":
            out.append(lines[i])
            i += 1
            continue
        j = i + 1
        while j < len(lines) and not lines[j].strip():
            j += 1
        if j == len(lines) or not lines[j].lstrip().startswith(">>>"):
            out.append(lines[i])
            i += 1
            continue
        out.append("Examples:")
        block = []
        while j < len(lines):
            line = lines[j]
            following = lines[j + 1] if j + 1 < len(lines) else ""
            if not line.strip() and (_TITLE.match(following.strip()) or not following):
                break
            block.append("    " + line if line.strip() else "")
            j += 1
        out.extend(block)
        i = j
    return "\n".join(out)


class KerasExamples(griffe.Extension):
    def on_object(self, *, obj, **kwargs):
        if obj.docstring is not None and "Example:" in obj.docstring.value:
            obj.docstring.value = keras_examples(obj.docstring.value)
