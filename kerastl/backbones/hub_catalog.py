"""The table of well-known TF Hub image feature vectors and their Kaggle Models handles.

Each `HubImageModel` gives the tfhub.dev handle, the Kaggle Models handle the
model moved to, the input size it was trained at, the smallest input the
architecture takes, the feature width and the input range. Every model here
takes float32 RGB images scaled to [0, 1] (the TF Hub image convention) and
returns pooled 2D features. `kerastl.backbones.hub_handles.find_hub_model`
looks handles up in `KNOWN_HUB_MODELS`.

Example:
    >>> [m.name for m in kerastl.backbones.hub_catalog.KNOWN_HUB_MODELS][:2]
    ['mobilenet_v2_100_224', 'mobilenet_v2_140_224']
"""

from __future__ import annotations

import dataclasses

@dataclasses.dataclass(frozen=True)
class HubImageModel:
    """One known TF Hub image feature vector.

    Args:
        name: Short snake_case name (``"mobilenet_v2_100_224"``).
        family: Architecture family (``"mobilenet_v2"``).
        tfhub: Its ``https://tfhub.dev/...`` handle.
        kaggle: Its ``https://www.kaggle.com/models/...`` handle.
        input_size: Side of the square images it was trained on.
        min_input_size: Smallest input side the architecture accepts.
        feature_dim: Width of the returned feature vector.
        input_range: Range the input pixels must be scaled to.
    """

    name: str
    family: str
    tfhub: str
    kaggle: str
    input_size: int
    min_input_size: int
    feature_dim: int
    input_range: tuple = (0.0, 1.0)

    def to_dict(self) -> dict:
        """Returns the entry as a JSON-friendly dict."""
        return dataclasses.asdict(self)


_TFHUB = "https://tfhub.dev/"
_KAGGLE = "https://www.kaggle.com/models/"


def _mobilenet(version: str, variant: str, tfhub_variant: str, feature_dim: int,
               kaggle_version: int) -> HubImageModel:
    return HubImageModel(
        f"mobilenet_{version}_{tfhub_variant}", f"mobilenet_{version}",
        f"{_TFHUB}google/imagenet/mobilenet_{version}_{tfhub_variant}/feature_vector/5",
        f"{_KAGGLE}google/mobilenet-{version}/TensorFlow2/{variant}-feature-vector/{kaggle_version}",
        224, 32, feature_dim)


def _efficientnet(b: int, size: int, feature_dim: int) -> HubImageModel:
    return HubImageModel(
        f"efficientnet_b{b}", "efficientnet",
        f"{_TFHUB}tensorflow/efficientnet/b{b}/feature-vector/1",
        f"{_KAGGLE}tensorflow/efficientnet/TensorFlow2/b{b}-feature-vector/1",
        size, 32, feature_dim)


def _efficientnet_v2(variant: str, size: int) -> HubImageModel:
    return HubImageModel(
        f"efficientnet_v2_{variant}", "efficientnet_v2",
        f"{_TFHUB}google/imagenet/efficientnet_v2_{variant}/feature_vector/2",
        f"{_KAGGLE}google/efficientnet-v2/TensorFlow2/"
        f"{variant.replace('_', '-')}-feature-vector/2",
        size, 32, 1280)


def _resnet(version: str, depth: int) -> HubImageModel:
    return HubImageModel(
        f"resnet_{version}_{depth}", f"resnet_{version}",
        f"{_TFHUB}google/imagenet/resnet_{version}_{depth}/feature_vector/5",
        f"{_KAGGLE}google/resnet-{version}/TensorFlow2/{depth}-feature-vector/2",
        224, 32, 2048)


def _bit(variant: str, feature_dim: int) -> HubImageModel:
    return HubImageModel(
        f"bit_{variant.replace('-', '_')}", "bit",
        f"{_TFHUB}google/bit/{variant}/1",
        f"{_KAGGLE}google/bit/TensorFlow2/{variant}/1",
        224, 32, feature_dim)


KNOWN_HUB_MODELS: tuple[HubImageModel, ...] = (
    _mobilenet("v2", "100-224", "100_224", 1280, 2),
    _mobilenet("v2", "140-224", "140_224", 1792, 2),
    HubImageModel("mobilenet_v2_tf2_preview", "mobilenet_v2",
                  f"{_TFHUB}google/tf2-preview/mobilenet_v2/feature_vector/4",
                  f"{_KAGGLE}google/mobilenet-v2/TensorFlow2/tf2-preview-feature-vector/4",
                  224, 32, 1280),
    _mobilenet("v3", "large-100-224", "large_100_224", 1280, 1),
    _mobilenet("v3", "large-075-224", "large_075_224", 1280, 1),
    _mobilenet("v3", "small-100-224", "small_100_224", 1024, 1),
    _mobilenet("v3", "small-075-224", "small_075_224", 1024, 1),
    _efficientnet(0, 224, 1280),
    _efficientnet(1, 240, 1280),
    _efficientnet(2, 260, 1408),
    _efficientnet(3, 300, 1536),
    _efficientnet(4, 380, 1792),
    _efficientnet(5, 456, 2048),
    _efficientnet(6, 528, 2304),
    _efficientnet(7, 600, 2560),
    _efficientnet_v2("imagenet1k_b0", 224),
    _efficientnet_v2("imagenet1k_b3", 300),
    _efficientnet_v2("imagenet1k_s", 384),
    _efficientnet_v2("imagenet21k_b0", 224),
    _efficientnet_v2("imagenet21k_ft1k_s", 384),
    _resnet("v1", 50),
    _resnet("v1", 101),
    _resnet("v2", 50),
    _resnet("v2", 101),
    _bit("m-r50x1", 2048),
    _bit("s-r50x1", 2048),
    _bit("m-r101x1", 2048),
    HubImageModel("inception_v3", "inception_v3",
                  f"{_TFHUB}google/imagenet/inception_v3/feature_vector/5",
                  f"{_KAGGLE}google/inception-v3/TensorFlow2/feature-vector/2", 299, 75, 2048),
    HubImageModel("inception_resnet_v2", "inception_resnet_v2",
                  f"{_TFHUB}google/imagenet/inception_resnet_v2/feature_vector/5",
                  f"{_KAGGLE}google/inception-resnet-v2/TensorFlow2/feature-vector/2",
                  299, 75, 1536),
)


__all__ = ["KNOWN_HUB_MODELS", "HubImageModel"]
