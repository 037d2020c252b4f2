"""Labels and model facts stored inside a `.tflite` file.

The TFLite flatbuffer has a ``metadata`` table of named buffers (the
converter already writes ``min_runtime_version`` and ``CONVERSION_METADATA``
there). kerastl adds two entries:

* ``kerastl_labels``: the contents of ``labels.txt`` (one name per line, UTF-8).
* ``kerastl_info``: JSON with task, class names, input shape, input range and
  preprocessing.

Why not the TFLite Support metadata (``TFLITE_METADATA``, read by the Android
Task Library)? Its only writer is the ``tflite-support`` package, whose last
release (0.4.4, 2023) requires ``protobuf<4`` and cannot be installed next to
TensorFlow 2.16+. The entries above are written with the flatbuffer schema
shipped in ``ai-edge-litert``; the runtime ignores them, any flatbuffer reader
(or `read_tflite_metadata`) can read them, and ``labels.txt`` is always
written beside the file as well.
"""

from __future__ import annotations

import json

import numpy as np

LABELS_KEY = "kerastl_labels"
INFO_KEY = "kerastl_info"
_ALIGNMENT = 16


def _schema():
    from ai_edge_litert import schema_py_generated as schema_fb
    return schema_fb


class _AlignedBuffer:
    """A model buffer that packs its bytes 16-byte aligned, like the converter does."""

    def __init__(self, schema_fb, data, offset: int = 0, size: int = 0):
        self._schema = schema_fb
        self.data = None if data is None else np.asarray(data, dtype=np.uint8).tobytes()
        self.offset, self.size = offset, size

    def Pack(self, builder):  # noqa: N802 (flatbuffers object-API name)
        vector = None
        if self.data:
            builder.StartVector(1, len(self.data), _ALIGNMENT)
            builder.head -= len(self.data)
            builder.Bytes[builder.head:builder.head + len(self.data)] = self.data
            builder.vectorNumElems = len(self.data)
            vector = builder.EndVector()
        self._schema.BufferStart(builder)
        if vector is not None:
            self._schema.BufferAddData(builder, vector)
        self._schema.BufferAddOffset(builder, self.offset)
        self._schema.BufferAddSize(builder, self.size)
        return self._schema.BufferEnd(builder)


def embed_metadata(model_bytes: bytes, *, labels, info: dict) -> bytes:
    """Returns `model_bytes` with the labels and `info` added as metadata.

    The model is unpacked with the TFLite flatbuffer schema and packed again
    with the two entries added (weights keep their 16-byte alignment).

    Args:
        model_bytes: A serialized TFLite model.
        labels: Output names, one per line of ``labels.txt``.
        info: JSON-friendly dict stored under ``kerastl_info``.

    Returns:
        The serialized model with the two metadata entries.

    Example:
        >>> data = kerastl.export.tflite_metadata.embed_metadata(
        ...     data, labels=["cat", "dog"], info={"task": "multiclass"})
    """
    import flatbuffers

    schema_fb = _schema()
    model = schema_fb.ModelT.InitFromPackedBuf(bytearray(model_bytes), 0)
    if any(b.offset for b in (model.buffers or [])):
        raise ValueError("Cannot add metadata to a TFLite model with external buffers (> 2 GB).")
    entries = {LABELS_KEY: "\n".join(labels) + "\n", INFO_KEY: json.dumps(info, sort_keys=True)}
    model.metadata = [m for m in (model.metadata or []) if _name(m.name) not in entries]
    model.buffers = [_AlignedBuffer(schema_fb, b.data, b.offset, b.size)
                     for b in (model.buffers or [])]
    for key, text in entries.items():
        model.buffers.append(_AlignedBuffer(schema_fb, list(text.encode("utf-8"))))
        entry = schema_fb.MetadataT()
        entry.name, entry.buffer = key, len(model.buffers) - 1
        model.metadata.append(entry)
    builder = flatbuffers.Builder(len(model_bytes) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _name(name) -> str:
    return name.decode("utf-8") if isinstance(name, bytes) else str(name)


def read_tflite_metadata(path) -> dict:
    """Reads the kerastl metadata of a `.tflite` file.

    Args:
        path: A `.tflite` file written by `kerastl.export`.

    Returns:
        ``{"labels": [...], "info": {...}}``; an empty dict when the file has
        no kerastl metadata.

    Raises:
        FileNotFoundError: No such file.
        ValueError: The file is empty, truncated or not a TFLite model.

    Example:
        >>> kerastl.export.read_tflite_metadata("saved_models/1/model_int8.tflite")["labels"]
        ['daisy', 'dandelion', 'rose', 'sunflower', 'tulip']
    """
    from kerastl.export.tflite import read_model

    schema_fb = _schema()
    data = bytearray(read_model(path))
    try:
        model = schema_fb.Model.GetRootAs(data, 0)
        return _read_entries(model)
    except Exception as err:  # flatbuffers raises struct.error, IndexError, ... on bad data
        raise ValueError(f"`path` must be a complete TFLite model; {str(path)!r} is truncated "
                         f"or corrupt (its flatbuffer tables point past its "
                         f"{len(data)} bytes). Received: path={str(path)!r}") from err


def _read_entries(model) -> dict:
    out = {}
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        name = _name(entry.Name())
        if name not in (LABELS_KEY, INFO_KEY):
            continue
        text = model.Buffers(entry.Buffer()).DataAsNumpy().tobytes().decode("utf-8")
        if name == LABELS_KEY:
            out["labels"] = text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")
        else:
            out["info"] = json.loads(text)
    return out
