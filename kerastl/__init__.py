"""kerastl: transfer learning for Keras 3 on TensorFlow.

From a folder of photos to a fine-tuned model and a quantized ``.tflite``::

    import kerastl
    data = kerastl.data.from_directory("photos/", image_size=224, validation_split=0.2)
    model = kerastl.build("mobilenet_v2", num_classes=data.num_classes,
                          class_names=data.class_names)
    report = kerastl.fit(model, data.train, data.validation)
    kerastl.export(model, "saved_models/flowers", representative_data=data.train)
"""

from kerastl import data, distribute, export, report
from kerastl.backbones import (BackboneSpec, get_backbone_spec, list_backbones,
                               register_backbone)
from kerastl.export import load, predict_tflite
from kerastl.freezing import TrainableSummary, set_trainable_blocks
from kerastl.heads import HeadConfig
from kerastl.layers import ClassificationHead, ImagePreprocessing
from kerastl.training import FeatureCache, FitReport, fit
from kerastl.tuning import SearchSpace, TuneResult, tune
from kerastl.model import (ModelInfo, build, feature_extractor, get_backbone, get_blocks,
                           get_head, model_info)

__version__ = "0.1.0"

__all__ = [
    "BackboneSpec", "ClassificationHead", "data", "distribute", "export", "load", "predict_tflite", "report", "SearchSpace", "TuneResult", "tune", "HeadConfig", "ImagePreprocessing", "ModelInfo",
    "FeatureCache", "FitReport", "TrainableSummary", "__version__", "build", "fit", "feature_extractor", "get_backbone", "get_backbone_spec", "get_blocks",
    "get_head", "list_backbones", "model_info", "register_backbone", "set_trainable_blocks",
]
