"""Writes the tutorial notebooks from the cells below: ``python tutorials/_make_notebooks.py``.

The notebooks are generated so that their source is reviewable as plain
Python; edit this file, not the ``.ipynb`` files, and rerun it. They are
saved without outputs. Every notebook reads its data location, sizes and
epoch counts from ``KERASTL_*`` environment variables whose defaults suit a
user online (``tfds:tf_flowers``, ImageNet weights); CI sets small values
(``tests/test_tutorials.py``).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

# The first cell of every notebook: installs kerastl when it is missing, from
# KERASTL_SOURCE, by default the kerastl checkout the notebook sits in.
INSTALL = '''\
# Set-up: install kerastl when it is missing (a fresh Colab or virtual environment).
# KERASTL_SOURCE is what pip installs: "" = the kerastl checkout this notebook sits in;
# or a git URL ("git+https://github.com/<you>/kerastl.git"), a wheel or a source folder.
KERASTL_SOURCE = ""

import importlib.util
import os
import subprocess
import sys


def kerastl_checkout(start=None):
    """The kerastl checkout holding `start` (default: the working folder), or None."""
    folder = os.path.abspath(start or os.getcwd())
    for candidate in (folder, os.path.dirname(folder)):
        pyproject = os.path.join(candidate, "pyproject.toml")
        if os.path.isfile(pyproject):
            with open(pyproject, encoding="utf-8") as f:
                if 'name = "kerastl"' in f.read():
                    return candidate
    return None


if importlib.util.find_spec("kerastl") is None:
    source = os.environ.get("KERASTL_SOURCE") or KERASTL_SOURCE or kerastl_checkout()
    if not source:
        raise RuntimeError("kerastl is not installed and this notebook is not inside a kerastl "
                           "checkout: set KERASTL_SOURCE at the top of this cell.")
    print(f"Installing kerastl from {source} ...")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", source], check=True)
    importlib.invalidate_caches()

import kerastl

print(f"kerastl {kerastl.__version__} ({os.path.dirname(kerastl.__file__)})")'''

SETTINGS = '''\
import os

# Every setting can be changed with an environment variable of the same name
# prefixed KERASTL_ (tests use tiny values so that the notebook runs in seconds).
DATA = os.environ.get("KERASTL_DATA", "tfds:tf_flowers")  # a folder of class folders, or tfds:NAME
BACKBONE = os.environ.get("KERASTL_BACKBONE", "mobilenet_v2")
IMAGE_SIZE = int(os.environ.get("KERASTL_IMAGE_SIZE", "160"))
WEIGHTS = os.environ.get("KERASTL_WEIGHTS", "imagenet")
EPOCHS = int(os.environ.get("KERASTL_EPOCHS", "10"))
FINE_TUNE_EPOCHS = int(os.environ.get("KERASTL_FINE_TUNE_EPOCHS", "5"))
'''

LOAD = '''\
import kerastl


def load_photos(image_size=IMAGE_SIZE, batch_size=32):
    """Loads DATA as kerastl.data.ImageData with a train and a validation split."""
    if DATA.startswith("tfds:"):  # tf_flowers has only a train split: hold out 20%
        return kerastl.data.from_tfds(DATA[len("tfds:"):], image_size=image_size,
                                      batch_size=batch_size, download=True,
                                      split=("train[:80%]", "train[80%:]"))
    ready_split = os.path.isdir(os.path.join(DATA, "train"))
    return kerastl.data.from_directory(DATA, image_size=image_size, batch_size=batch_size,
                                       validation_split=None if ready_split else 0.2)


data = load_photos()
print(data)
'''


def _notebook(cells: list) -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.cells = [new_markdown_cell(c[3:]) if c.startswith("md:") else new_code_cell(c)
                for c in [INSTALL, *cells]]
    for index, cell in enumerate(nb.cells):
        cell.id = f"cell-{index:02d}"  # stable ids: regenerating gives no diff
    nb.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python",
                                  "name": "python3"},
                   "language_info": {"name": "python"}}
    return nb


FEATURE_EXTRACTION_VS_FINE_TUNING = [
    """md:# Feature extraction or fine-tuning?

A pretrained backbone can be used two ways:

* **feature extraction**: freeze it and train only a new classifier head on its features;
* **fine-tuning**: also train its top blocks, at a lower learning rate, after the head has
  warmed up (kerastl's `"two_stage"` recipe).

The usual advice depends on two things: how much data you have, and how similar it is to
ImageNet (the photos the backbone was trained on). This notebook measures both recipes on a
photo folder, on a small and a full training set, and on the same photos turned into edge
maps (a stand-in for data far from ImageNet: sketches, X-rays, microscopy).""",
    SETTINGS + '''\
SMALL_PER_CLASS = int(os.environ.get("KERASTL_SMALL_PER_CLASS", "10"))  # "small dataset" size
PER_CLASS = int(os.environ.get("KERASTL_PER_CLASS", "0"))  # cap on the full set (0: no cap)
VAL_PER_CLASS = int(os.environ.get("KERASTL_VAL_PER_CLASS", "0"))  # cap on validation (0: none)''',
    LOAD,
    """md:Both recipes train on the same images, so we take them out of the `tf.data`
pipeline once as arrays (`kerastl.fit` also accepts `(images, labels)` tuples).""",
    '''\
import numpy as np


def as_arrays(dataset):
    """Collects (images, labels) batches into two arrays."""
    images, labels = zip(*[(x.numpy(), y.numpy()) for x, y in dataset])
    return np.concatenate(images), np.concatenate(labels)


def first_per_class(x, y, n):
    """The first `n` images of every class (all of them when n is 0)."""
    if not n:
        return x, y
    keep = np.sort(np.concatenate([np.flatnonzero(y == c)[:n] for c in np.unique(y)]))
    return x[keep], y[keep]


x_full, y_full = first_per_class(*as_arrays(data.train), PER_CLASS)
x_small, y_small = first_per_class(x_full, y_full, SMALL_PER_CLASS)
x_val, y_val = first_per_class(*as_arrays(data.validation), VAL_PER_CLASS)
print(f"full: {len(x_full)} training images, small: {len(x_small)}, validation: {len(x_val)}")''',
    """md:The second domain: the same photos as edge maps (Sobel filter on the gray image).
Labels and sizes do not change, only how far the pixels are from ImageNet photos.""",
    '''\
import tensorflow as tf


def to_edges(images, batch=64):
    """RGB images in [0, 255] -> 3-channel edge maps in [0, 255]."""
    out = []
    for start in range(0, len(images), batch):
        gray = tf.image.rgb_to_grayscale(images[start:start + batch])
        gx, gy = tf.unstack(tf.image.sobel_edges(gray), axis=-1)  # each (batch, h, w, 1)
        edges = tf.sqrt(gx ** 2 + gy ** 2)
        edges = 255.0 * edges / (tf.reduce_max(edges, axis=[1, 2, 3], keepdims=True) + 1e-6)
        out.append(tf.repeat(edges, 3, axis=-1).numpy())
    return np.concatenate(out)


domains = {
    "photos": (x_full, x_small, x_val),
    "edge maps": (to_edges(x_full), to_edges(x_small), to_edges(x_val)),
}''',
    """md:One run = a fresh model built with `kerastl.build` and trained with `kerastl.fit`;
we keep the best validation accuracy and the wall time. All runs start from the same
ImageNet weights, so they share one `kerastl.training.FeatureCache`: the frozen backbone
runs over each training set once, not once per run.""",
    '''\
import keras
from kerastl.training import FeatureCache

cache = FeatureCache()


def run(train, validation, recipe):
    keras.utils.set_random_seed(0)
    model = kerastl.build(BACKBONE, data.num_classes, class_names=data.class_names,
                          input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3), weights=WEIGHTS)
    stages = {"fine_tune_epochs": FINE_TUNE_EPOCHS} if recipe == "two_stage" else {}
    report = kerastl.fit(model, train, validation, recipe=recipe, epochs=EPOCHS, seed=0,
                         feature_cache=cache, verbose=0, **stages)
    return report.best["val_accuracy"], report.seconds


results = []
for domain, (x_big, x_few, xv) in domains.items():
    validation = (xv, y_val)
    for size, train in {"small": (x_few, y_small), "full": (x_big, y_full)}.items():
        row = {"domain": domain, "size": size, "images": len(train[0])}
        for recipe in ("feature_extraction", "two_stage"):
            row[recipe], row[recipe + "_s"] = run(train, validation, recipe)
        results.append(row)
        print(row)''',
    '''\
from IPython.display import Markdown, display

lines = ["| domain | training set | feature extraction | fine-tuning (two_stage) | gain |",
         "|---|---|---|---|---|"]
for r in results:
    gain = r["two_stage"] - r["feature_extraction"]
    lines.append(f"| {r['domain']} | {r['size']} ({r['images']} images) | "
                 f"{r['feature_extraction']:.3f} ({r['feature_extraction_s']:.0f} s) | "
                 f"{r['two_stage']:.3f} ({r['two_stage_s']:.0f} s) | {gain:+.3f} |")
display(Markdown("\\n".join(lines)))''',
    """md:## The decision table

| | similar to ImageNet (photos) | different from ImageNet (edge maps) |
|---|---|---|
| **small dataset** | feature extraction (cheap, hard to overfit) | feature extraction first; \
fine-tune a few top blocks if validation says so |
| **large dataset** | fine-tune the top blocks (`"two_stage"`) | fine-tune deeper (more \
blocks, or `"all"`) |

The cell below fills the table with what *your* runs measured (with the tiny epoch counts of
a test run the numbers are noisy; with the defaults they are not).""",
    '''\
def verdict(domain, size):
    r = next(r for r in results if r["domain"] == domain and r["size"] == size)
    gain = r["two_stage"] - r["feature_extraction"]
    choice = "fine-tuning" if gain > 0.01 else "feature extraction"
    return f"{choice} ({gain:+.3f})"


table = ["| | photos | edge maps |", "|---|---|---|"]
for size in ("small", "full"):
    table.append(f"| **{size} dataset** | {verdict('photos', size)} | "
                 f"{verdict('edge maps', size)} |")
display(Markdown("\\n".join(table)))''',
    """md:What to take away:

* Feature extraction is nearly free (kerastl caches the backbone's features, so every epoch
  only trains the head) and is the right start on small data.
* Fine-tuning pays off when there are enough images per class, and more so the further the
  data is from ImageNet: the top blocks' features must adapt.
* `recipe="auto"` in `kerastl.fit` follows the first rule (feature extraction below 400
  training images, two stages above). Notebook 2 tunes *how deep* to fine-tune.""",
]


TUNING = [
    """md:# Tuning the unfreeze depth and the learning rates

How many of the backbone's top blocks to fine-tune, and at which learning rates, matter
more than most other settings. `kerastl.tune` searches them with keras-tuner: every trial
builds a model with `kerastl.build` and trains it with `kerastl.fit`'s recipe. All trials
share one cache of backbone features; the head stage on those features (by default fitted
in closed form by `kerastl.fit`: a linear head, its L2 strength chosen by cross-validation)
is run once per head learning rate and dropout and shared, so trials that keep the
backbone frozen cost seconds. `fine_tune_epochs` counts only the fine-tuning epochs (the
expensive ones), and a fine-tuning stage that falls clearly below its head stage is stopped
early (`prune=True`).""",
    SETTINGS + '''\
TRIALS = int(os.environ.get("KERASTL_TRIALS", "10"))
DEPTHS = [d if d == "all" else int(d)
          for d in os.environ.get("KERASTL_DEPTHS", "0,2,4,all").split(",")]''',
    LOAD,
    """md:The search space: unfreeze depths counted in the backbone's own blocks
(`kerastl.get_blocks` / `kerastl backbones` list them), a log-scale range for the head's
learning rate, one for the backbone's (fine-tuned blocks want a smaller one), and the
head's dropout.""",
    '''\
space = kerastl.SearchSpace(trainable_blocks=DEPTHS, learning_rate=(1e-4, 1e-2),
                            backbone_learning_rate=(1e-5, 1e-3), dropout=[0.0, 0.2])
print(space.to_dict())''',
    '''\
result = kerastl.tune(
    data.train, data.validation, backbone=BACKBONE, search_space=space,
    algorithm="random", max_trials=TRIALS, fine_tune_epochs=FINE_TUNE_EPOCHS,
    directory="runs/tuning_tutorial", overwrite=True, seed=0, verbose=0,
    build_kwargs={"weights": WEIGHTS, "class_names": data.class_names})  # input size: the data's
print(result.summary())''',
    """md:`algorithm="random"` keeps this example simple; `"hyperband"` (the default) stops poor
settings early and `"bayesian"` models the score. Which depth did best?""",
    '''\
best_per_depth = {}
for trial in result.completed:
    depth = trial["hyperparameters"]["trainable_blocks"]
    best_per_depth[depth] = max(best_per_depth.get(depth, 0.0), trial["score"])
for depth, score in best_per_depth.items():
    print(f"trainable_blocks={depth!s:>4}: best {result.objective} {score:.3f}")
print("best setting:", result.best_hyperparameters)''',
    """md:The same run as a report folder: the trial table, the trial scores, score against
depth and learning rate, and the best model (retrained with the best setting) evaluated on
the validation images.""",
    '''\
from IPython.display import Image, display

run = kerastl.report("runs/tuning_tutorial_report", tune_result=result,
                     model=result.best_model, eval_data=data)
print(run)
display(Image(filename=str(run.file("trial_scores"))))
display(Image(filename=str(run.file("tune_search"))))''',
    """md:Rerunning `kerastl.tune` with the same `directory` (and `overwrite=False`) resumes
the search instead of starting over. From a shell the same search is:

```bash
kerastl tune flowers/ --algorithm random --max-trials 10 --trainable-blocks 0,2,4,all \\
    --learning-rate 1e-4:1e-2 --backbone-learning-rate 1e-5:1e-3 --dropout 0.0,0.2 \\
    --fine-tune-epochs 5
```""",
]


EXPORT = [
    """md:# Export to SavedModel and int8 TFLite, and check the `.tflite` like a phone would

We train a model, export it with `kerastl.export` (a verified, versioned folder with a
SavedModel, a `.keras` file and `.tflite` files), then run the int8 `.tflite` file the way
an app does: one 8-bit camera frame at a time through the TFLite interpreter.""",
    SETTINGS,
    LOAD,
    '''\
model = kerastl.build(BACKBONE, data.num_classes, class_names=data.class_names,
                      input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3), weights=WEIGHTS)
fit_report = kerastl.fit(model, data.train, data.validation, epochs=EPOCHS,
                         fine_tune_epochs=FINE_TUNE_EPOCHS, seed=0, verbose=0)
print(fit_report)''',
    """md:int8 quantization needs a few hundred representative images to calibrate the
activation ranges; `eval_data` makes the export measure every artifact against the Keras
model before the version folder is published.""",
    '''\
export = kerastl.export(model, "saved_models/flowers_tutorial",
                        quantization=("float32", "int8"), representative_data=data.train,
                        eval_data=data.validation)
import pathlib

print(sorted(p.name for p in pathlib.Path(export.path).iterdir()))''',
    """md:The SavedModel runs without kerastl (TF Serving, `tf.saved_model.load`); its
`serving_default` signature takes float RGB pixels in [0, 255] and returns probabilities.""",
    '''\
import numpy as np
import tensorflow as tf

images, labels = next(iter(data.validation))
serving = tf.saved_model.load(f"{export.path}/saved_model").signatures["serving_default"]
probabilities = serving(image=images)["probabilities"].numpy()
print("SavedModel agrees with Keras:",
      np.allclose(probabilities, model.predict(images, verbose=0), atol=1e-4))''',
    """md:## The phone's view

An int8 model takes **uint8** pixels and returns **uint8** scores; the app reads the labels
stored in the file. We feed validation images one at a time as 8-bit RGB, exactly as a
camera frame would arrive, and count how often the top label is right.""",
    '''\
import time

from ai_edge_litert.interpreter import Interpreter

tflite_path = f"{export.path}/model_int8.tflite"
labels_in_file = kerastl.export.read_tflite_metadata(tflite_path)["labels"]
interpreter = Interpreter(model_path=tflite_path, num_threads=2)
interpreter.allocate_tensors()
inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
print("input", inp["dtype"].__name__, inp["shape"], "| output", out["dtype"].__name__,
      out["shape"], "| labels", labels_in_file)

y_true, y_pred, seconds = [], [], 0.0
for batch, batch_labels in data.validation:
    for image, label in zip(batch.numpy(), batch_labels.numpy()):
        frame = np.clip(np.round(image), 0, 255).astype(np.uint8)[None]  # one 8-bit frame
        interpreter.set_tensor(inp["index"], frame)
        start = time.perf_counter()
        interpreter.invoke()
        seconds += time.perf_counter() - start
        y_pred.append(int(np.argmax(interpreter.get_tensor(out["index"])[0])))
        y_true.append(int(label))

phone_accuracy = np.mean(np.array(y_true) == np.array(y_pred))
keras_accuracy = export.keras["accuracy"]
print(f"int8 .tflite on {len(y_true)} images: accuracy {phone_accuracy:.3f} "
      f"(Keras model: {keras_accuracy:.3f}), {1000 * seconds / len(y_true):.1f} ms per image")''',
    """md:Per class, with the confusion matrix (rows: true class, columns: predicted):""",
    '''\
from IPython.display import Image, display

check = kerastl.report("runs/tflite_check", y_true=y_true, y_pred=y_pred,
                       class_names=labels_in_file)
print(kerastl.report.format_metrics(check.metrics))
display(Image(filename=str(check.file("confusion_matrix"))))''',
    """md:The same from a shell:

```bash
kerastl export runs/flowers/model.keras --out saved_models/flowers --quantization int8 \\
    --representative-data flowers/ --eval-data flowers/ --eval-split validation
kerastl evaluate saved_models/flowers/1/model_int8.tflite flowers/ --split validation
kerastl predict saved_models/flowers/1/model_int8.tflite my_photo.jpg --top-k 3
```""",
]


TPU = [
    """md:# Training on a Colab TPU

In Colab choose *Runtime > Change runtime type > TPU*, then run the cells in order. The same
notebook runs on a GPU or a CPU: `kerastl.distribute.get_strategy("auto")` picks a TPU when
there is one and otherwise falls back (and says so).""",
    """md:The first cell installed kerastl if it was missing (Colab already has TensorFlow and
Keras): from the checkout this notebook sits in, or from `KERASTL_SOURCE` (set it to your
fork's git URL when you open the notebook straight from GitHub).""",
    SETTINGS + '''\
PER_REPLICA_BATCH = int(os.environ.get("KERASTL_BATCH_SIZE", "32"))''',
    """md:Find the accelerator. On a TPU runtime this connects to the TPU and initializes it;
everywhere else it returns the best local strategy.""",
    '''\
import kerastl

strategy = kerastl.distribute.get_strategy("auto")
if kerastl.distribute.is_tpu(strategy):
    print(f"TPU found: {kerastl.distribute.describe(strategy)}")
else:
    print(f"No TPU found: falling back to {kerastl.distribute.describe(strategy)}. "
          "(In Colab: Runtime > Change runtime type > TPU.)")
print("mixed precision policy:", kerastl.distribute.default_dtype_policy(strategy) or "float32")''',
    """md:kerastl's batch size is per replica; the datasets are batched with the global batch
(8 TPU cores x 32 = 256), so every core gets the same work as one GPU would.""",
    LOAD.replace("data = load_photos()",
                 "GLOBAL_BATCH = kerastl.distribute.global_batch_size(PER_REPLICA_BATCH, "
                 "strategy)\ndata = load_photos(batch_size=GLOBAL_BATCH)"),
    """md:Build the model in the strategy's scope (its variables live on the TPU) and train
it with the same strategy; on a TPU, kerastl uses bfloat16 and static batch shapes.""",
    '''\
model = kerastl.build(BACKBONE, data.num_classes, class_names=data.class_names,
                      input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3), weights=WEIGHTS,
                      strategy=strategy)
fit_report = kerastl.fit(model, data.train, data.validation, epochs=EPOCHS,
                         fine_tune_epochs=FINE_TUNE_EPOCHS, strategy=strategy, seed=0,
                         verbose=1)
print(fit_report)''',
    '''\
run = kerastl.report("runs/tpu_tutorial", model=model, fit_report=fit_report, eval_data=data,
                     config={"strategy": kerastl.distribute.describe(strategy),
                             "global_batch": GLOBAL_BATCH, "backbone": BACKBONE})
print(run)''',
    """md:The trained model is an ordinary Keras model: save it, export it for phones
(notebook 3), or download the run folder from Colab's file browser.""",
    '''\
import pathlib

model.save("runs/tpu_tutorial/model.keras")
print(sorted(p.name for p in pathlib.Path("runs/tpu_tutorial").iterdir()))''',
]

NOTEBOOKS = {
    "01_feature_extraction_vs_fine_tuning.ipynb": FEATURE_EXTRACTION_VS_FINE_TUNING,
    "02_tuning_unfreeze_depth_and_learning_rates.ipynb": TUNING,
    "03_export_savedmodel_and_int8_tflite.ipynb": EXPORT,
    "04_training_on_a_colab_tpu.ipynb": TPU,
}


def main() -> None:
    for name, cells in NOTEBOOKS.items():
        nbformat.write(_notebook(cells), HERE / name)
        print(f"wrote tutorials/{name} ({len(cells)} cells)")


if __name__ == "__main__":
    main()
