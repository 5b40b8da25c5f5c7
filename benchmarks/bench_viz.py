"""Throughput of keras_aprelu.viz against the speed limit, as ratios, on
every Keras backend.

The limit of a gradient method is a bare compiled forward and backward pass
on the same batch (64 MNIST images) that returns the input gradient of the
predicted class, written with the backend's own tools: a `tf.function` with
a gradient tape on TensorFlow, a jitted `jax.grad` over `stateless_call` on
JAX, eager autograd on PyTorch. The limit of occlusion is a bare forward
pass, divided by the number of patch positions, and that of the deletion
and insertion metrics a bare forward pass divided by their steps + 1. A
ratio of 1.0 means the method runs at that limit; higher is better.

Every function is compiled and warmed up first; the timed rounds then run
all of them interleaved, and each ratio is the median over rounds, so a
noisy, shared machine slows both sides alike.

A small keras-hub ViT (batch 32) times Grad-CAM on the token grid and
gradient rollout against the bare forward and backward pass, and attention
rollout against the bare forward pass. Two more rows say what reading the
attention costs by itself: the bare passes with the attention computed
explicitly, as the rollouts need it, against the fused ones.

LRP (the default composite, and the gamma-box one, which evaluates each
convolution five times) and DeepLIFT (one forward pass of the inputs and
their baselines together) are timed against the bare forward and backward
pass. zennit, where it can be imported, runs LRP with the same composite
on a PyTorch rebuild of the same CNN and weights in the same process (its
context entered once, outside the timing); the row gives zennit's time
divided by ours (above 1: ours is faster).

Where tf-keras-vis or tf-explain can be imported (TensorFlow only), their
saliency, SmoothGrad, Grad-CAM and occlusion are timed against the same
limits, each called as its documentation shows. Neither is a dependency of
keras-aprelu.

`--backend all` runs each backend in a process of its own (Keras fixes its
backend per process), one after the other, and then prints each method's
median time on JAX and on PyTorch divided by its time on TensorFlow. Those
cross-backend ratios come from three processes run in sequence, not one, so
they are rougher than the ratios to the limits.

    python benchmarks/bench_viz.py                    # TensorFlow
    python benchmarks/bench_viz.py --backend all      # every backend
    python benchmarks/bench_viz.py --quick            # a smoke run
    python benchmarks/bench_viz.py --onednn both      # TensorFlow, oneDNN on, off
    python benchmarks/bench_viz.py --cnn-only         # without ResNet50 and ViT
"""

import argparse
import json
import os
import pathlib
import platform
import subprocess
import sys
import time

from _argv import argument
from _argv import backend_argument

BACKENDS = ("tensorflow", "jax", "torch")
if backend_argument(sys.argv[1:]) in BACKENDS:
    os.environ["KERAS_BACKEND"] = backend_argument(sys.argv[1:])
# TensorFlow's oneDNN kernels: on by default on some x86 CPUs (Intel ones),
# off on others (AMD) and with TF_ENABLE_ONEDNN_OPTS=0.
ONEDNN = {"on": "1", "off": "0"}
if argument(sys.argv[1:], "onednn") in ONEDNN:
    os.environ["TF_ENABLE_ONEDNN_OPTS"] = ONEDNN[argument(sys.argv[1:], "onednn")]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))
sys.path.insert(1, str(ROOT))  # tests/viz/torch_rebuild.py: zennit's import

import keras  # noqa: E402
import mnist_cnn  # noqa: E402
import numpy as np  # noqa: E402

from keras_aprelu import viz  # noqa: E402
from keras_aprelu.viz import _attention  # noqa: E402

BATCH = 64
SMOOTH = 16
PATCH = 4  # 7 x 7 = 49 positions on 28 x 28
STEPS = 16  # deletion and insertion: 17 forward passes per input


def timed(fn, repeats):
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def speed_limits(model):
    """The speed limits on this backend: a bare compiled forward and
    backward pass that returns the input gradient of the predicted class,
    and a bare compiled forward pass. Both take and return NumPy."""
    backend = keras.config.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function
        def forward_backward(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                out = model(x, training=False)
                score = tf.gather(out, tf.argmax(out, axis=1), axis=1, batch_dims=1)
            return tape.gradient(score, x)

        forward = tf.function(lambda x: model(x, training=False))
        return (
            lambda x: forward_backward(tf.constant(x)).numpy(),
            lambda x: forward(tf.constant(x)).numpy(),
        )
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        def run(trainable, non_trainable, x):
            out, _ = model.stateless_call(trainable, non_trainable, x, training=False)
            return out

        def score(x, trainable, non_trainable):
            out = run(trainable, non_trainable, x)
            return jnp.sum(jnp.max(out, axis=1))  # the predicted class's

        grad = jax.jit(jax.grad(score))
        forward = jax.jit(run)

        def state():
            return (
                [v.value for v in model.trainable_variables],
                [v.value for v in model.non_trainable_variables],
            )

        return (
            lambda x: np.asarray(grad(x, *state())),
            lambda x: np.asarray(forward(*state(), x)),
        )
    import torch

    def forward_backward(x):
        x = torch.tensor(x, requires_grad=True)
        out = model(x, training=False)
        (grad,) = torch.autograd.grad(out.max(dim=1).values.sum(), x)
        return grad.numpy()

    def forward(x):
        with torch.no_grad():
            return model(torch.tensor(x), training=False).numpy()

    return forward_backward, forward


def zennit_lrp(model, x, classes):
    """zennit's EpsilonPlusFlat on a PyTorch rebuild of the MNIST CNN (ReLU)
    with the same weights: ({"zennit lrp": call}, exit), or ({}, no-op)
    where zennit cannot run. The composite's context is entered here, once,
    and `exit` leaves it."""
    try:
        import torch

        from tests.viz.torch_rebuild import import_zennit
        from tests.viz.torch_rebuild import torch_layer

        zennit = import_zennit()
    except ImportError as error:
        print(f"zennit not timed: {error}")
        return {}, lambda: None
    if model.get_layer("act1").__class__ is not keras.layers.ReLU:
        print("zennit not timed: the rebuild is of the ReLU CNN")
        return {}, lambda: None
    from torch import nn

    class KerasFlatten(nn.Module):  # NCHW -> Keras's NHWC order
        def forward(self, x):
            return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)

    net = nn.Sequential(
        torch_layer(model, "conv1"), nn.ReLU(), nn.MaxPool2d(2),
        torch_layer(model, "conv2"), nn.ReLU(), nn.MaxPool2d(2),
        KerasFlatten(), torch_layer(model, "classifier"),
    ).eval()  # fmt: skip
    composite = zennit.composites.EpsilonPlusFlat()
    context = composite.context(net)
    modified = context.__enter__()
    x_torch = torch.tensor(np.transpose(x, (0, 3, 1, 2)))
    rows = torch.arange(len(x))

    def run():
        inputs = x_torch.clone().requires_grad_()
        out = modified(inputs)
        start = torch.zeros_like(out)
        start[rows, classes] = out[rows, classes].detach()
        (relevance,) = torch.autograd.grad(out, inputs, start)
        return relevance.numpy()

    # The same work: the same maps, to float32 rounding.
    theirs = run().sum(axis=1)
    ours = viz.lrp(model, x, classes, normalize=False)
    gap = np.abs(theirs - ours).max() / np.abs(theirs).max()
    print(f"zennit LRP against ours: largest difference {gap:.1e} of the largest")
    return {"zennit lrp": run}, lambda: context.__exit__(None, None, None)


def peer_cases(model, x, classes):
    """The peers' calls for the same work, for those that can be imported
    (they run on TensorFlow only)."""
    cases = {}
    if keras.config.backend() != "tensorflow":
        return cases
    try:
        from tf_keras_vis.gradcam import Gradcam
        from tf_keras_vis.saliency import Saliency
        from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
        from tf_keras_vis.utils.scores import CategoricalScore
    except ImportError as error:
        print(f"tf-keras-vis not timed: {error}")
    else:
        score = CategoricalScore([int(c) for c in classes])
        saliency = Saliency(model, model_modifier=ReplaceToLinear(), clone=True)
        gradcam = Gradcam(model, model_modifier=ReplaceToLinear(), clone=True)
        cases["tf-keras-vis saliency"] = lambda: saliency(score, x)
        cases["tf-keras-vis SmoothGrad"] = lambda: saliency(
            score, x, smooth_samples=SMOOTH, smooth_noise=0.2
        )
        cases["tf-keras-vis Grad-CAM"] = lambda: gradcam(
            score, x, penultimate_layer="pool2"
        )
    try:
        from tf_explain.core.occlusion_sensitivity import OcclusionSensitivity
    except ImportError as error:
        print(f"tf-explain not timed: {error}")
    else:
        explainer = OcclusionSensitivity()

        def tf_explain_occlusion(limit=8):
            # Its API takes one class for a batch and loops over the images
            # itself, one predict call each; the per-image core is timed on
            # `limit` images and scaled to the batch.
            for image, c in zip(x[:limit], classes[:limit], strict=True):
                explainer.get_sensitivity_map(model, image, int(c), PATCH)

        cases["tf-explain occlusion (8 of 64)"] = tf_explain_occlusion
    return cases


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--activation", default="relu", choices=mnist_cnn.ACTIVATIONS)
    parser.add_argument(
        "--backend", choices=(*BACKENDS, "all"), help="defaults to KERAS_BACKEND"
    )
    parser.add_argument(
        "--json", action="store_true", help="print the median times as JSON, last"
    )
    parser.add_argument(
        "--cnn-only",
        action="store_true",
        help="only the MNIST CNN's rows (no ResNet50, no ViT)",
    )
    parser.add_argument(
        "--onednn",
        choices=("on", "off", "both"),
        help="TensorFlow's oneDNN kernels (TF_ENABLE_ONEDNN_OPTS); both: "
        "the TensorFlow rows twice, in two processes. Defaults to this "
        "machine's default",
    )
    args = parser.parse_args()
    if args.onednn == "both":
        return both_onednn_settings()
    if args.backend == "all":
        return compare_backends(args)
    rounds, repeats = (2, 2) if args.quick else (7, 5)

    model = mnist_cnn.build_cnn(args.activation)
    x = np.random.default_rng(0).random((BATCH, 28, 28, 1)).astype("float32")
    positions = (28 // PATCH) ** 2
    forward_backward, forward = speed_limits(model)

    def naive_occlusion(limit=4):
        # One predict call per patch, as a new user would write it; only
        # `limit` positions are run and the time is scaled to all of them.
        for p in range(limit):
            occluded = x.copy()
            i, j = divmod(p, 28 // PATCH)
            occluded[:, i * PATCH : (i + 1) * PATCH, j * PATCH : (j + 1) * PATCH] = 0
            model.predict(occluded, verbose=0, batch_size=BATCH)

    maps = viz.saliency(model, x)
    channels = viz.feature_maps(model, x[:1], "pool2").shape[-1]  # CAM layer
    cases = {
        "limit fwd+bwd": lambda: forward_backward(x),
        "limit fwd": lambda: forward(x),
        "saliency": lambda: viz.saliency(model, x),
        "guided": lambda: viz.saliency(model, x, modifier="guided"),
        "grad_cam": lambda: viz.grad_cam(model, x),
        "grad_cam++": lambda: viz.grad_cam_plus_plus(model, x),
        "smoothgrad": lambda: viz.saliency(model, x, smooth_samples=SMOOTH),
        "occlusion": lambda: viz.occlusion(model, x, patch_size=PATCH),
        "hires_cam": lambda: viz.hires_cam(model, x),
        "layer_cam": lambda: viz.layer_cam(model, x),
        "score_cam": lambda: viz.score_cam(model, x),
        "lrp": lambda: viz.lrp(model, x),
        "lrp gamma box": lambda: viz.lrp(
            model, x, composite="epsilon_gamma_box", low=0.0, high=1.0
        ),
        "deeplift": lambda: viz.deeplift(model, x),
        "deletion": lambda: viz.metrics.deletion(model, x, maps, steps=STEPS),
        "insertion": lambda: viz.metrics.insertion(model, x, maps, steps=STEPS),
        "naive occlusion (4 of 49)": naive_occlusion,
    }
    classes = np.argmax(forward(x), axis=1)
    cases.update(peer_cases(model, x, classes))
    zennit_case, zennit_exit = zennit_lrp(model, x, classes)
    cases.update(zennit_case)
    try:
        t = measure(cases, rounds, repeats)
    finally:
        zennit_exit()

    print(
        f"keras {keras.__version__}, backend {keras.config.backend()}, "
        f"{platform.machine()} ({cpu_name()}), {os.cpu_count()} CPUs, "
        f"batch {BATCH}, MNIST CNN with {args.activation}, "
        f"{rounds} rounds x {repeats}"
    )
    if keras.config.backend() == "tensorflow":
        print(f"TensorFlow's oneDNN kernels: {onednn_state()}")
    print(f"{'method':28s} {'ratio to its limit':>20s}   goal")
    rows = [
        ("saliency", ratio(t["limit fwd+bwd"], t["saliency"]), ">= 0.8"),
        ("guided backprop", ratio(t["limit fwd+bwd"], t["guided"]), ""),
        ("Grad-CAM", ratio(t["limit fwd+bwd"], t["grad_cam"]), ">= 0.8"),
        ("Grad-CAM++", ratio(t["limit fwd+bwd"], t["grad_cam++"]), ""),
        (
            f"SmoothGrad (N={SMOOTH})",
            ratio(SMOOTH * t["limit fwd+bwd"], t["smoothgrad"]),
            ">= 0.8",
        ),
        (
            f"occlusion ({positions} positions)",
            ratio(positions * t["limit fwd"], t["occlusion"]),
            ">= 0.8",
        ),
        ("HiResCAM", ratio(t["limit fwd+bwd"], t["hires_cam"]), ">= 0.8"),
        ("Layer-CAM", ratio(t["limit fwd+bwd"], t["layer_cam"]), ">= 0.8"),
        (
            f"Score-CAM ({channels} channels)",
            ratio(channels * t["limit fwd"], t["score_cam"]),
            ">= 0.8",
        ),
        ("LRP (epsilon_plus_flat)", ratio(t["limit fwd+bwd"], t["lrp"]), ">= 0.8"),
        (
            "LRP (epsilon_gamma_box)",
            ratio(t["limit fwd+bwd"], t["lrp gamma box"]),
            ">= 0.8",
        ),
        ("DeepLIFT", ratio(t["limit fwd+bwd"], t["deeplift"]), ">= 0.8"),
        (
            f"deletion ({STEPS} steps)",
            ratio((STEPS + 1) * t["limit fwd"], t["deletion"]),
            ">= 0.8",
        ),
        (
            f"insertion ({STEPS} steps)",
            ratio((STEPS + 1) * t["limit fwd"], t["insertion"]),
            ">= 0.8",
        ),
        (
            "naive predict-per-patch loop",
            ratio(
                positions * t["limit fwd"],
                t["naive occlusion (4 of 49)"] * positions / 4,
            ),
            "",
        ),
    ]
    limits = {
        "tf-keras-vis saliency": t["limit fwd+bwd"],
        "tf-keras-vis SmoothGrad": SMOOTH * t["limit fwd+bwd"],
        "tf-keras-vis Grad-CAM": t["limit fwd+bwd"],
    }
    for name, limit in limits.items():
        if name in t:
            rows.append((name, ratio(limit, t[name]), ""))
    name = "tf-explain occlusion (8 of 64)"
    if name in t:
        scaled = t[name] * BATCH / 8
        rows.append(
            ("tf-explain occlusion", ratio(positions * t["limit fwd"], scaled), "")
        )
    if "zennit lrp" in t:
        # zennit's time over ours: above 1, ours is the faster.
        rows.append(("zennit LRP time / ours", ratio(t["zennit lrp"], t["lrp"]), ""))
    for name, value, goal in rows:
        print(f"{name:28s} {value:20.2f}   {goal}")
    if args.cnn_only:
        if args.json:
            print(json.dumps({name: float(np.median(v)) for name, v in t.items()}))
        return
    print()
    print(
        f"ResNet50 (random weights), {RESNET_SIZE}x{RESNET_SIZE}x3, "
        f"batch {RESNET_BATCH}"
    )
    resnet, resnet_times = resnet_rows(rounds, max(1, repeats // 2))
    for name, value in resnet:
        print(f"{name:28s} {value:20.2f}")
    print()
    print(
        f"keras-hub ViT (random weights), {VIT_SIZE}x{VIT_SIZE}x3 in "
        f"{VIT_PATCH}x{VIT_PATCH} patches, {VIT_LAYERS} blocks, batch {VIT_BATCH}"
    )
    vit, vit_times = vit_rows(rounds, repeats)
    for name, value in vit:
        goal = "" if name.startswith(" ") else ">= 0.8"
        print(f"{name:28s} {value:20.2f}   {goal}")
    if args.json:
        medians = {name: float(np.median(v)) for name, v in t.items()}
        medians.update({f"ResNet50 {k}": v for k, v in resnet_times.items()})
        medians.update({f"ViT {k}": v for k, v in vit_times.items()})
        print(json.dumps(medians))


def cpu_name():
    """The CPU's model name, from /proc/cpuinfo where there is one."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def onednn_state():
    """Whether TensorFlow runs its oneDNN kernels here, as it says itself."""
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:
        return "unknown (this TensorFlow does not say)"
    setting = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset")
    state = "on" if _pywrap_util_port.IsMklEnabled() else "off"
    return f"{state} (TF_ENABLE_ONEDNN_OPTS={setting})"


def without(argv, flags):
    """`argv` without the `flags` and their values (`--f X` or `--f=X`)."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in flags:
            skip = True
        elif not arg.startswith(tuple(f + "=" for f in flags)):
            kept.append(arg)
    return kept


def both_onednn_settings():
    """This benchmark on TensorFlow twice, each in a process of its own:
    with oneDNN on, then off. The ratios of each run are measured in one
    process; the two runs are not compared with each other."""
    for setting in ("on", "off"):
        argv = without(sys.argv[1:], ("--onednn", "--backend"))
        command = [sys.executable, __file__, *argv, "--onednn", setting]
        command += ["--backend", "tensorflow"]
        print(f"== oneDNN {setting}", flush=True)
        subprocess.run(command, check=True)
        print(flush=True)


def compare_backends(args):
    """Runs every backend in a process of its own, then prints the time of
    each method on JAX and PyTorch over its time on TensorFlow."""
    times = {}
    for backend in BACKENDS:
        command = [sys.executable, __file__, "--backend", backend, "--json"]
        command += ["--activation", args.activation] + (
            ["--quick"] if args.quick else []
        )
        command += ["--cnn-only"] if args.cnn_only else []
        out = subprocess.run(command, capture_output=True, text=True, check=True)
        lines = out.stdout.strip().splitlines()
        print("\n".join(lines[:-1]), end="\n\n")
        times[backend] = json.loads(lines[-1])
    print("time over TensorFlow's (lower is faster), same model and batch:")
    print(f"{'method':28s} {'jax':>8s} {'torch':>8s}")
    for name, base in times["tensorflow"].items():
        if name in times["jax"] and name in times["torch"]:
            print(
                f"{name:28s} {times['jax'][name] / base:8.2f} "
                f"{times['torch'][name] / base:8.2f}"
            )


def measure(cases, rounds, repeats):
    """Median-ready times of `cases`, compiled and warmed up first, then
    run interleaved for `rounds` rounds of `repeats` calls each."""
    for fn in cases.values():
        fn()
        fn()
    times = {name: [] for name in cases}
    for _ in range(rounds):
        for name, fn in cases.items():
            times[name].append(timed(fn, repeats))
    return {name: np.array(v) for name, v in times.items()}


def ratio(limit, ours):
    return float(np.median(limit / ours))


RESNET_SIZE, RESNET_BATCH = 128, 8


def resnet_rows(rounds, repeats):
    """Saliency and Grad-CAM on ResNet50 against the bare limit, and
    tf-keras-vis's where it imports."""
    model = keras.applications.ResNet50(
        weights=None, input_shape=(RESNET_SIZE, RESNET_SIZE, 3), classes=10
    )
    x = (
        np.random.default_rng(1)
        .uniform(0, 255, (RESNET_BATCH, RESNET_SIZE, RESNET_SIZE, 3))
        .astype("float32")
    )
    forward_backward, _ = speed_limits(model)

    cases = {
        "limit": lambda: forward_backward(x),
        "saliency": lambda: viz.saliency(model, x),
        "grad_cam": lambda: viz.grad_cam(model, x),
    }
    try:
        if keras.config.backend() != "tensorflow":
            raise ImportError("it runs on TensorFlow only")
        from tf_keras_vis.gradcam import Gradcam
        from tf_keras_vis.saliency import Saliency
        from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
        from tf_keras_vis.utils.scores import CategoricalScore
    except ImportError as error:
        print(f"tf-keras-vis not timed on ResNet50: {error}")
    else:
        classes = np.argmax(model.predict(x, verbose=0), axis=1)
        score = CategoricalScore([int(c) for c in classes])
        saliency = Saliency(model, model_modifier=ReplaceToLinear(), clone=True)
        gradcam = Gradcam(model, model_modifier=ReplaceToLinear(), clone=True)
        cases["tf-keras-vis saliency"] = lambda: saliency(score, x)
        cases["tf-keras-vis Grad-CAM"] = lambda: gradcam(
            score, x, penultimate_layer="conv5_block3_out"
        )
    t = measure(cases, rounds, repeats)
    rows = [
        (f"ResNet50 {name}", ratio(t["limit"], t[name]))
        for name in cases
        if name != "limit"
    ]
    return rows, {name: float(np.median(v)) for name, v in t.items()}


VIT_SIZE, VIT_PATCH, VIT_LAYERS, VIT_BATCH = 32, 4, 4, 32


def vit_rows(rounds, repeats):
    """Grad-CAM on the token grid and both rollouts on a small keras-hub
    ViT, against the bare forward (attention rollout) and the bare forward
    and backward (the others). The bare passes use the model as it runs,
    its attention fused where the backend fuses it; the rollouts compute
    it explicitly, which is their cost."""
    import keras_hub

    backbone = keras_hub.models.ViTBackbone(
        image_shape=(VIT_SIZE, VIT_SIZE, 3),
        patch_size=VIT_PATCH,
        num_layers=VIT_LAYERS,
        num_heads=4,
        hidden_dim=64,
        mlp_dim=128,
    )
    images = keras.Input((VIT_SIZE, VIT_SIZE, 3))
    model = keras.Model(images, keras.layers.Dense(10)(backbone(images)[:, 0]))
    x = (
        np.random.default_rng(2)
        .random((VIT_BATCH, VIT_SIZE, VIT_SIZE, 3))
        .astype("float32")
    )
    forward_backward, forward = speed_limits(model)
    # The same bare passes with the attention computed explicitly, as the
    # rollouts need it (traced, where the backend traces, with the patch).
    explicit_fb, explicit_f = speed_limits(model)
    attention = [layer for _, layer in _attention.attention_layers(model)]

    def explicit(fn):
        with _attention.recording(attention, []):
            return fn(x)

    cases = {
        "limit fwd+bwd": lambda: forward_backward(x),
        "limit fwd": lambda: forward(x),
        "explicit fwd+bwd": lambda: explicit(explicit_fb),
        "explicit fwd": lambda: explicit(explicit_f),
        "grad_cam": lambda: viz.grad_cam(model, x),
        "attention_rollout": lambda: viz.attention_rollout(model, x),
        "gradient_rollout": lambda: viz.gradient_rollout(model, x),
    }
    t = measure(cases, rounds, repeats)
    rows = [
        ("ViT Grad-CAM (tokens)", ratio(t["limit fwd+bwd"], t["grad_cam"])),
        ("ViT attention rollout", ratio(t["limit fwd"], t["attention_rollout"])),
        ("ViT gradient rollout", ratio(t["limit fwd+bwd"], t["gradient_rollout"])),
        ("  explicit attention, fwd", ratio(t["limit fwd"], t["explicit fwd"])),
        (
            "  explicit attention, fwd+bwd",
            ratio(t["limit fwd+bwd"], t["explicit fwd+bwd"]),
        ),
    ]
    return rows, {name: float(np.median(v)) for name, v in t.items()}


if __name__ == "__main__":
    main()
