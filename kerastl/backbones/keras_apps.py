"""Specs of every Keras Applications backbone that has ``include_top=False``.

This module is data: one `BackboneSpec` per model. The block patterns name
each architecture's own repeated units; ``tests/backbones/test_keras_apps.py``
checks every spec (feature width, block count, parameter count, block
order and coverage) against the real model.
"""

from __future__ import annotations

import keras

from kerastl.backbones.spec import BackboneSpec

_A = keras.applications

# Block patterns per family (see `BackboneSpec` for the anchor rules).
_MOBILENET = r"^conv_(?:pad|dw|pw)_(?P<block>\d+)(?:_|$)"
_MOBILENET_V2 = r"^(?P<block>block_\d+|Conv_1)(?:_|$)"
_MOBILENET_V3 = r"^(?P<block>expanded_conv(?:_\d+)?|conv_1)(?:_|$)"
_EFFICIENTNET = r"^(?P<block>block\d+[a-z]|top)_"
_RESNET = r"^(?P<block>conv\d_block\d+|post)_"
_INCEPTION_V3 = r"^(?P<block>mixed\d+)$"
_INCEPTION_RESNET_V2 = (r"^(?P<block>mixed_5b|block35_\d+|mixed_6a|block17_\d+|mixed_7a"
                        r"|block8_\d+)(?:_ac)?$")
_XCEPTION = r"^(?P<block>block\d+)_"
_DENSENET = r"^(?P<block>conv\d_block\d+|pool[2-5]|bn)(?:_|$)"
_VGG = r"^(?P<block>block\d)_"
_NASNET = r"^(?P<block>reduction_concat_stem_\d|normal_concat_\d+|reduction_concat_reduce_\d+)$"
_CONVNEXT = r"_(?P<block>stage_\d+_block_\d+|downsampling_block_\d+)(?:_|$)"


def _spec(name, constructor, preprocessing, size, feature_dim, num_blocks, num_params, pattern,
          *, family, anchor="start", min_size=32, kwargs=None, prefix=""):
    return BackboneSpec(
        name=name, constructor=constructor, preprocessing=preprocessing,
        default_input_size=size, min_input_size=min_size, feature_dim=feature_dim,
        num_blocks=num_blocks, block_pattern=pattern, block_anchor=anchor,
        num_params=num_params, family=family, kwargs=dict(kwargs or {}), source="keras",
        block_prefix=prefix)


_MOBILENET_KW = {"alpha": 1.0, "depth_multiplier": 1, "dropout": 1e-3}
_V3_KW = {"alpha": 1.0, "minimalistic": False, "dropout_rate": 0.2}

KERAS_APPLICATION_SPECS = (
    _spec("mobilenet", _A.MobileNet, "tf", 224, 1024, 14, 3228864, _MOBILENET,
          family="mobilenet", kwargs=_MOBILENET_KW, prefix="block_"),
    _spec("mobilenet_v2", _A.MobileNetV2, "tf", 224, 1280, 18, 2257984, _MOBILENET_V2,
          family="mobilenet_v2", kwargs={"alpha": 1.0}),
    _spec("mobilenet_v3_small", _A.MobileNetV3Small, "none", 224, 576, 13, 939120, _MOBILENET_V3,
          family="mobilenet_v3", kwargs=_V3_KW),
    _spec("mobilenet_v3_large", _A.MobileNetV3Large, "none", 224, 960, 17, 2996352, _MOBILENET_V3,
          family="mobilenet_v3", kwargs=_V3_KW),
    _spec("efficientnet_b0", _A.EfficientNetB0, "none", 224, 1280, 18, 4049571, _EFFICIENTNET,
          family="efficientnet"),
    _spec("efficientnet_b1", _A.EfficientNetB1, "none", 240, 1280, 25, 6575239, _EFFICIENTNET,
          family="efficientnet"),
    _spec("efficientnet_b2", _A.EfficientNetB2, "none", 260, 1408, 25, 7768569, _EFFICIENTNET,
          family="efficientnet"),
    _spec("efficientnet_b3", _A.EfficientNetB3, "none", 300, 1536, 28, 10783535, _EFFICIENTNET,
          family="efficientnet"),
    _spec("efficientnet_b4", _A.EfficientNetB4, "none", 380, 1792, 34, 17673823, _EFFICIENTNET,
          family="efficientnet"),
    _spec("efficientnet_b5", _A.EfficientNetB5, "none", 456, 2048, 41, 28513527, _EFFICIENTNET,
          family="efficientnet"),
    _spec("efficientnet_b6", _A.EfficientNetB6, "none", 528, 2304, 47, 40960143, _EFFICIENTNET,
          family="efficientnet"),
    _spec("efficientnet_b7", _A.EfficientNetB7, "none", 600, 2560, 57, 64097687, _EFFICIENTNET,
          family="efficientnet"),
    _spec("efficientnet_v2_b0", _A.EfficientNetV2B0, "none", 224, 1280, 23, 5919312,
          _EFFICIENTNET, family="efficientnet_v2"),
    _spec("efficientnet_v2_b1", _A.EfficientNetV2B1, "none", 240, 1280, 29, 6931124,
          _EFFICIENTNET, family="efficientnet_v2"),
    _spec("efficientnet_v2_b2", _A.EfficientNetV2B2, "none", 260, 1408, 30, 8769374,
          _EFFICIENTNET, family="efficientnet_v2"),
    _spec("efficientnet_v2_b3", _A.EfficientNetV2B3, "none", 300, 1536, 34, 12930622,
          _EFFICIENTNET, family="efficientnet_v2"),
    _spec("efficientnet_v2_s", _A.EfficientNetV2S, "none", 384, 1280, 42, 20331360,
          _EFFICIENTNET, family="efficientnet_v2"),
    _spec("efficientnet_v2_m", _A.EfficientNetV2M, "none", 480, 1280, 59, 53150388,
          _EFFICIENTNET, family="efficientnet_v2"),
    _spec("efficientnet_v2_l", _A.EfficientNetV2L, "none", 480, 1280, 81, 117746848,
          _EFFICIENTNET, family="efficientnet_v2"),
    _spec("resnet50", _A.ResNet50, "caffe", 224, 2048, 17, 23587712, _RESNET, family="resnet"),
    _spec("resnet101", _A.ResNet101, "caffe", 224, 2048, 34, 42658176, _RESNET, family="resnet"),
    _spec("resnet152", _A.ResNet152, "caffe", 224, 2048, 51, 58370944, _RESNET, family="resnet"),
    _spec("resnet50_v2", _A.ResNet50V2, "tf", 224, 2048, 18, 23564800, _RESNET,
          family="resnet_v2"),
    _spec("resnet101_v2", _A.ResNet101V2, "tf", 224, 2048, 35, 42626560, _RESNET,
          family="resnet_v2"),
    _spec("resnet152_v2", _A.ResNet152V2, "tf", 224, 2048, 52, 58331648, _RESNET,
          family="resnet_v2"),
    _spec("inception_v3", _A.InceptionV3, "tf", 299, 2048, 11, 21802784, _INCEPTION_V3,
          family="inception_v3", anchor="end", min_size=75),
    _spec("inception_resnet_v2", _A.InceptionResNetV2, "tf", 299, 1536, 43, 54336736,
          _INCEPTION_RESNET_V2, family="inception_resnet_v2", anchor="end", min_size=75),
    _spec("xception", _A.Xception, "tf", 299, 2048, 14, 20861480, _XCEPTION, family="xception",
          min_size=71),
    _spec("densenet121", _A.DenseNet121, "torch", 224, 1024, 63, 7037504, _DENSENET,
          family="densenet"),
    _spec("densenet169", _A.DenseNet169, "torch", 224, 1664, 87, 12642880, _DENSENET,
          family="densenet"),
    _spec("densenet201", _A.DenseNet201, "torch", 224, 1920, 103, 18321984, _DENSENET,
          family="densenet"),
    _spec("vgg16", _A.VGG16, "caffe", 224, 512, 5, 14714688, _VGG, family="vgg"),
    _spec("vgg19", _A.VGG19, "caffe", 224, 512, 5, 20024384, _VGG, family="vgg"),
    _spec("nasnet_mobile", _A.NASNetMobile, "tf", 224, 1056, 16, 4269716, _NASNET,
          family="nasnet", anchor="end"),
    _spec("nasnet_large", _A.NASNetLarge, "tf", 331, 4032, 22, 84916818, _NASNET,
          family="nasnet", anchor="end"),
    _spec("convnext_tiny", _A.ConvNeXtTiny, "none", 224, 768, 22, 27820128, _CONVNEXT,
          family="convnext"),
    _spec("convnext_small", _A.ConvNeXtSmall, "none", 224, 768, 40, 49454688, _CONVNEXT,
          family="convnext"),
    _spec("convnext_base", _A.ConvNeXtBase, "none", 224, 1024, 40, 87566464, _CONVNEXT,
          family="convnext"),
    _spec("convnext_large", _A.ConvNeXtLarge, "none", 224, 1536, 40, 196230336, _CONVNEXT,
          family="convnext"),
    _spec("convnext_xlarge", _A.ConvNeXtXLarge, "none", 224, 2048, 40, 348147968, _CONVNEXT,
          family="convnext"),
)
