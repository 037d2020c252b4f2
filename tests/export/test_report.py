"""Tests of kerastl/export/report.py: the table and the JSON form."""

import json

from kerastl.export.report import ArtifactReport, ExportReport


def _report(**keras_metrics):
    artifacts = [
        ArtifactReport("model_float32.tflite", "tflite", "float32", 1_000_000, "a" * 64,
                       size_ratio=1.0, accuracy=0.9, agreement=1.0, max_abs_diff=1e-7,
                       latency_ms=10.0),
        ArtifactReport("model_int8.tflite", "tflite", "int8", 260_000, "b" * 64,
                       size_ratio=0.26, accuracy=0.895, agreement=0.98, max_abs_diff=0.05,
                       latency_ms=4.0),
    ]
    return ExportReport(path="/m/1", version="1", task="multiclass", class_names=["a", "b"],
                        artifacts=artifacts, keras=keras_metrics, check_data="eval_data",
                        num_check_images=200, runtime="ai_edge_litert")


def test_table_has_one_row_per_artifact_and_only_filled_columns():
    lines = str(_report(accuracy=0.9, latency_ms=12.0)).splitlines()
    assert lines[0] == "kerastl export 1 -> /m/1"
    assert "200 images from eval_data" in lines[1]
    header = lines[2].split()
    assert header[:3] == ["artifact", "bytes", "vs"] and "mae" not in header
    rows = {line.split()[0]: line.split() for line in lines[4:]}
    assert rows["model_int8.tflite"][1:4] == ["260,000", "0.260x", "0.8950"]
    assert rows["model_float32.tflite"][-1] == "10.00"
    assert lines[4].startswith("keras (reference)")


def test_json_round_trip_and_lookup():
    import numpy as np

    # numpy scalars (what verification computes) must come out as plain JSON numbers.
    report = _report(accuracy=np.float32(0.9), latency_ms=np.float64(12.5))
    data = json.loads(report.to_json())
    assert data["keras"] == {"accuracy": 0.8999999761581421, "latency_ms": 12.5}
    assert [a["name"] for a in data["artifacts"]] == ["model_float32.tflite",
                                                       "model_int8.tflite"]
    assert data["artifacts"][1]["size_ratio"] == 0.26
    assert report.artifact("model_int8.tflite").agreement == 0.98
