"""Starts TensorFlow without its C++ start-up lines, for the user-facing
scripts.

TensorFlow's native libraries write CUDA probing and oneDNN notices to
stderr when they load ("Could not find cuda drivers", "failed call to
cuInit", ...). Some come before absl's logging is set up, and no environment
variable silences those, so standard error is held in a file while
TensorFlow loads and finds its devices. If that fails, what it wrote is
replayed before the error propagates, so nothing is lost.
"""

import os
import sys
import tempfile


def import_tensorflow():
    """Imports TensorFlow (and lists its devices) with its native start-up
    output held back; returns the module."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()
        except BaseException:
            os.dup2(saved, 2)
            held.seek(0)
            sys.stderr.write(held.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    return tf
