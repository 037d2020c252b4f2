"""``manifest.json``: what an exported version holds, with sizes and hashes.

For a file artifact, ``sha256`` is the file's SHA-256. For a folder (the
SavedModel), ``files`` maps each relative path (``/``-separated) to its size
and SHA-256, and ``sha256`` is the SHA-256 of the lines
``"<sha256>  <relative path>\\n"`` sorted by path (the format of
``sha256sum``), so ``cd saved_model && find . -type f | sort | xargs sha256sum``
reproduces it.
"""

from __future__ import annotations

import datetime
import hashlib
import importlib.metadata
import json
from pathlib import Path

MANIFEST_FILE = "manifest.json"
LABELS_FILE = "labels.txt"
FORMAT_VERSION = 1


def file_sha256(path) -> str:
    """Returns the hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def tree_entry(path) -> dict:
    """Returns size, sha256 and per-file hashes of a folder (see the module doc)."""
    root = Path(path)
    files = {}
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = file.relative_to(root).as_posix()
        files[rel] = {"size_bytes": file.stat().st_size, "sha256": file_sha256(file)}
    listing = "".join(f"{files[rel]['sha256']}  {rel}\n" for rel in sorted(files))
    return {"size_bytes": sum(f["size_bytes"] for f in files.values()),
            "sha256": hashlib.sha256(listing.encode("utf-8")).hexdigest(), "files": files}


def artifact_entry(path) -> dict:
    """Returns ``{"size_bytes", "sha256"}`` (plus ``files`` for a folder)."""
    path = Path(path)
    if path.is_dir():
        return tree_entry(path)
    return {"size_bytes": path.stat().st_size, "sha256": file_sha256(path)}


def write_labels(path, labels) -> None:
    """Writes one output name per line (UTF-8)."""
    Path(path).write_text("".join(f"{name}\n" for name in labels), encoding="utf-8")


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def library_versions() -> dict:
    """Returns the versions of kerastl, TensorFlow, Keras and the TFLite runtime."""
    import keras
    import tensorflow as tf

    return {"kerastl": _version("kerastl"), "tensorflow": tf.__version__,
            "keras": keras.__version__, "ai_edge_litert": _version("ai-edge-litert")}


def build_manifest(*, info: dict, version: str, artifacts: dict, report_dict: dict) -> dict:
    """Returns the manifest of one exported version.

    Args:
        info: Model metadata (`kerastl.export.info.model_metadata`).
        version: The version's name.
        artifacts: Artifact name to its entry (path, format, size, sha256, ...).
        report_dict: `ExportReport.to_dict()` (its metrics are copied).

    Returns:
        A JSON-friendly dict.
    """
    metrics = {"keras": report_dict["keras"], "check_data": report_dict["check_data"],
               "num_check_images": report_dict["num_check_images"],
               "runtime": report_dict["runtime"]}
    for item in report_dict["artifacts"]:
        metrics[item["name"]] = {k: item[k] for k in ("size_ratio", "accuracy", "mae",
                                                      "agreement", "max_abs_diff", "latency_ms")
                                 if item[k] is not None}
    height, width, channels = info["input_shape"]
    return {
        "format_version": FORMAT_VERSION,
        "version": version,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "backbone": info["backbone"],
        "task": info["task"],
        "num_outputs": info["num_outputs"],
        "class_names": info["class_names"],
        "labels_file": LABELS_FILE,
        "input": {"height": height, "width": width, "channels": channels,
                  "dtype": "float32", "range": [0, 255], "color": "RGB"},
        "preprocessing": {"mode": info["preprocessing"], "included_in_model": True},
        "artifacts": artifacts,
        "metrics": metrics,
        "versions": library_versions(),
    }


def write_manifest(path, manifest: dict) -> None:
    """Writes the manifest as indented JSON."""
    Path(path).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def read_manifest(version_dir) -> dict:
    """Reads ``manifest.json`` of an exported version folder."""
    return json.loads((Path(version_dir) / MANIFEST_FILE).read_text(encoding="utf-8"))
