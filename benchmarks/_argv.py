"""Keras reads KERAS_BACKEND once, when it is imported, so a benchmark that
takes `--backend` reads it from the command line before it imports Keras."""


def backend_argument(argv, default=None):
    """The value of `--backend X` or `--backend=X` in `argv`, or `default`."""
    for i, arg in enumerate(argv):
        if arg.startswith("--backend="):
            return arg.split("=", 1)[1]
        if arg == "--backend" and i + 1 < len(argv):
            return argv[i + 1]
    return default
