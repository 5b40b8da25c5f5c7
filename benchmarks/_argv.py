"""Keras reads KERAS_BACKEND once, when it is imported, and TensorFlow reads
TF_ENABLE_ONEDNN_OPTS once, so a benchmark that takes `--backend` or
`--onednn` reads them from the command line before it imports either."""


def argument(argv, name, default=None):
    """The value of `--name X` or `--name=X` in `argv`, or `default`."""
    flag = f"--{name}"
    for i, arg in enumerate(argv):
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
        if arg == flag and i + 1 < len(argv):
            return argv[i + 1]
    return default


def backend_argument(argv, default=None):
    """The value of `--backend X` or `--backend=X` in `argv`, or `default`."""
    return argument(argv, "backend", default)
