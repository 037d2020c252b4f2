"""Running the on-device few-shot files with LiteRT, and the report of their check.

The embedding ``.tflite`` files have an ``embed`` signature (``image`` ->
``embedding``); the float32 one and ``prototype_classifier.tflite`` also have
``classify`` (``embedding`` [N, D], ``prototypes`` [K, D] -> ``probabilities``
[N, K], ``class_index`` [N]). An app adds a class by running ``embed`` on a
few photos and appending `kerastl.fewshot.prototypes.class_prototypes` of
them (the normalised mean of the normalised embeddings, for cosine) to the
prototype matrix it passes to ``classify``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from kerastl.export.tflite import make_interpreter

EMBED, CLASSIFY = "embed", "classify"


def _quantize(value, detail):
    if not np.issubdtype(detail["dtype"], np.integer):
        return value.astype(detail["dtype"])
    scale, zero_point = detail["quantization"]
    info = np.iinfo(detail["dtype"])
    return np.clip(np.round(value / scale + zero_point), info.min, info.max).astype(
        detail["dtype"])


def _dequantize(value, detail):
    if not np.issubdtype(detail["dtype"], np.integer) or detail["dtype"] == np.int64:
        return value
    scale, zero_point = detail["quantization"]
    return (value.astype("float32") - zero_point) * scale


def run_signature(interpreter, key: str, **inputs) -> dict:
    """Runs one signature of a LiteRT interpreter; (de)quantizes integer inputs and outputs.

    Example:
        >>> out = kerastl.fewshot.ondevice.run_signature(interp, "embed", image=images)
        >>> out["embedding"].shape
        (8, 1280)
    """
    runner = interpreter.get_signature_runner(key)
    details = runner.get_input_details()
    feed = {name: _quantize(np.asarray(value, "float32"), details[name])
            for name, value in inputs.items()}
    outputs = runner(**feed)
    out_details = runner.get_output_details()
    return {name: _dequantize(value, out_details[name]) for name, value in outputs.items()}


def signatures(path) -> list[str]:
    """Returns the signature keys of a `.tflite` file."""
    return sorted(make_interpreter(path).get_signature_list())


def embed_tflite(path, images, *, batch_size: int = 32) -> np.ndarray:
    """Returns the ``embed`` signature's embeddings of `images` (RGB in [0, 255])."""
    interpreter = make_interpreter(path)
    images = np.asarray(images, "float32")
    parts = [run_signature(interpreter, EMBED, image=images[i:i + batch_size])["embedding"]
             for i in range(0, len(images), batch_size)]
    return np.concatenate(parts).astype("float32")


def classify_tflite(path, embeddings, prototypes) -> np.ndarray:
    """Returns the ``classify`` signature's probabilities of `embeddings` against `prototypes`."""
    interpreter = make_interpreter(path)
    out = run_signature(interpreter, CLASSIFY, embedding=np.asarray(embeddings, "float32"),
                        prototypes=np.asarray(prototypes, "float32"))
    return np.asarray(out["probabilities"], "float32")


@dataclasses.dataclass
class OnDeviceArtifact:
    """One checked file of an on-device export.

    Attributes:
        name: File name.
        quantization: ``"float32"``, ``"int8"``... (None for the SavedModel).
        size_bytes: Size on disk.
        agreement: Fraction of check images whose top class (the file's
            embeddings x the stored prototypes, through its ``classify``
            signature) matches the Keras model's.
        on_device_agreement: The same, with prototypes recomputed from the
            file's own embeddings of the support images (None without them).
        accuracy: Accuracy on labelled check images (None without labels).
        max_abs_diff: Largest difference of the probabilities from Keras's.
    """

    name: str
    quantization: str | None
    size_bytes: int
    agreement: float
    on_device_agreement: float | None = None
    accuracy: float | None = None
    max_abs_diff: float | None = None


@dataclasses.dataclass
class OnDeviceReport:
    """What `kerastl.fewshot.export` wrote and how well each file agrees with Keras.

    Attributes:
        path: The version folder.
        version: Its name.
        class_names: One name per prototype.
        metric: ``"cosine"``, ``"euclidean"`` or ``"mahalanobis"``.
        scale: The head's score scale.
        embedding_width: Width of the embeddings.
        artifacts: `OnDeviceArtifact` per checked file.
        keras_accuracy: The Keras model's accuracy on labelled check images.
        num_check_images: Images the files were compared on.
        check_data: Where they came from (``"eval_data"``, ``"representative_data"``,
            ``"random"``).
    """

    path: str
    version: str
    class_names: list
    metric: str
    scale: float
    embedding_width: int
    artifacts: list
    keras_accuracy: float | None
    num_check_images: int
    check_data: str

    def artifact(self, name: str) -> OnDeviceArtifact:
        """Returns the report of one file."""
        for item in self.artifacts:
            if item.name == name:
                return item
        raise KeyError(f"`name` must be one of {[a.name for a in self.artifacts]}. "
                       f"Received: name={name!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        lines = [f"On-device prototypes: {len(self.class_names)} classes, {self.metric}, "
                 f"embedding width {self.embedding_width} -> {self.path}",
                 f"checked on {self.num_check_images} images ({self.check_data})",
                 f"{'file':34} {'size':>10} {'agree':>7} {'on-dev':>7} {'acc':>7}"]

        def pct(v):
            return "-" if v is None else f"{100 * v:.1f}%"

        for a in self.artifacts:
            lines.append(f"{a.name:34} {a.size_bytes:>10} {pct(a.agreement):>7} "
                         f"{pct(a.on_device_agreement):>7} {pct(a.accuracy):>7}")
        return "\n".join(lines)


__all__ = ["CLASSIFY", "EMBED", "OnDeviceArtifact", "OnDeviceReport", "classify_tflite",
           "embed_tflite", "run_signature", "signatures"]
