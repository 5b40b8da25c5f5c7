"""Visualization for any Keras 3 model: saliency, Grad-CAM, occlusion,
filters and APReLU's slopes.

Every method takes the same arguments (`model`, `inputs`, `target`,
`layer`, `batch_size`, `normalize`, `logits`, `progress`) and returns NumPy
arrays of shape `(batch, *spatial)`. `inputs` is what `model.predict`
takes: an array (channels first or last, as the model's layers say), a list
or dict of arrays for a model with several inputs (one map per input comes
back, in the same structure), or a `tf.data.Dataset`, streamed. The figures
live in `keras_aprelu.viz.plotting`, which needs matplotlib
(`pip install "keras-aprelu[viz]"`).

viz runs on every Keras backend it knows (TensorFlow, JAX and PyTorch),
with the same signatures and the same maps: the backend's own compiler and
autodiff do the work (`_backend/`), always with the model's current
weights, and the model is left as it was.
"""

from keras_aprelu.viz import _grad_cam as _grad_cam_module
from keras_aprelu.viz import metrics as metrics  # the module, viz.metrics
from keras_aprelu.viz._aprelu import aprelu_slopes
from keras_aprelu.viz._aprelu import dead_units
from keras_aprelu.viz._filters import activation_maximization
from keras_aprelu.viz._filters import feature_maps
from keras_aprelu.viz._filters import filters
from keras_aprelu.viz._grad_cam import grad_cam
from keras_aprelu.viz._grad_cam import grad_cam_plus_plus
from keras_aprelu.viz._grad_cam import guided_grad_cam
from keras_aprelu.viz._grad_cam import hires_cam
from keras_aprelu.viz._grad_cam import layer_cam
from keras_aprelu.viz._grad_cam import score_cam
from keras_aprelu.viz._lrp import deeplift
from keras_aprelu.viz._lrp import deeplift_shap
from keras_aprelu.viz._lrp import lrp
from keras_aprelu.viz._noise_tunnel import noise_tunnel
from keras_aprelu.viz._occlusion import occlusion
from keras_aprelu.viz._relevance import register_relevance_rule
from keras_aprelu.viz._rollout import attention_maps
from keras_aprelu.viz._rollout import attention_rollout
from keras_aprelu.viz._rollout import gradient_rollout
from keras_aprelu.viz._saliency import gradient_x_input
from keras_aprelu.viz._saliency import integrated_gradients
from keras_aprelu.viz._saliency import saliency
from keras_aprelu.viz.plotting import overlay
from keras_aprelu.viz.plotting import plot_activation_functions
from keras_aprelu.viz.plotting import plot_activation_maximization
from keras_aprelu.viz.plotting import plot_aprelu_slopes
from keras_aprelu.viz.plotting import plot_dead_units
from keras_aprelu.viz.plotting import plot_deletion_curves
from keras_aprelu.viz.plotting import plot_feature_maps
from keras_aprelu.viz.plotting import plot_filters
from keras_aprelu.viz.plotting import plot_heatmaps
from keras_aprelu.viz.plotting import plot_randomization_test
from keras_aprelu.viz.plotting import plot_token_attributions

# The map methods whose `layer` names the feature map they weigh, their maps
# staying over the inputs: the CAMs. The gradient methods' `layer` moves
# their maps to that layer's output instead, which the callbacks' overlays
# cannot draw.
_CAM_METHODS = tuple(_grad_cam_module.__all__)

# The methods that return maps (batch, *spatial) from (model, inputs,
# target): the names the callbacks accept.
_MAP_METHODS = (
    "saliency",
    "gradient_x_input",
    "integrated_gradients",
    "lrp",
    "deeplift",
    *_CAM_METHODS,
    "occlusion",
    "gradient_rollout",
)

__all__ = [
    "activation_maximization",
    "attention_maps",
    "attention_rollout",
    "aprelu_slopes",
    "dead_units",
    "deeplift",
    "deeplift_shap",
    "feature_maps",
    "filters",
    "grad_cam",
    "grad_cam_plus_plus",
    "gradient_rollout",
    "gradient_x_input",
    "guided_grad_cam",
    "hires_cam",
    "integrated_gradients",
    "layer_cam",
    "lrp",
    "noise_tunnel",
    "occlusion",
    "overlay",
    "plot_activation_functions",
    "plot_activation_maximization",
    "plot_aprelu_slopes",
    "plot_dead_units",
    "plot_deletion_curves",
    "plot_feature_maps",
    "plot_filters",
    "plot_heatmaps",
    "plot_randomization_test",
    "plot_token_attributions",
    "register_relevance_rule",
    "saliency",
    "score_cam",
]
