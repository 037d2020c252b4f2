"""``import kerastl`` is lazy, yet Keras finds kerastl's layers as soon as Keras is imported."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import kerastl


def _python(code: str, **env) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **env})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_import_kerastl_and_its_cli_load_no_tensorflow():
    proc = _python("import sys, kerastl, kerastl.cli, kerastl.weights\n"
                   "print(sorted(m for m in ('tensorflow', 'keras', 'tensorflow_hub', "
                   "'keras_tuner', 'matplotlib') if m in sys.modules))")
    assert proc.stdout.strip() == "[]"


@pytest.mark.parametrize("keras_first", [False, True], ids=["kerastl_first", "keras_first"])
def test_keras_load_model_finds_kerastl_layers(tmp_path, keras_first):
    model = kerastl.build("mobilenet", num_classes=3, input_shape=(32, 32, 3), weights=None,
                          backbone_kwargs={"alpha": 0.25}, class_names=["a", "b", "c"])
    path = tmp_path / "tiny.keras"
    model.save(path)
    order = "import keras, kerastl" if keras_first else "import kerastl, keras"
    code = (f"{order}\n"
            f"model = keras.saving.load_model({str(path)!r})\n"
            "print(type(model.get_layer('head')).__module__)\n"
            "print(keras.saving.get_registered_object('kerastl>ScaledAdamW').__name__)\n"
            "print(kerastl.model_info(model).class_names)")
    lines = _python(code).stdout.strip().splitlines()
    assert lines == ["kerastl.layers", "ScaledAdamW", "['a', 'b', 'c']"]


def test_every_public_name_resolves_to_its_module():
    import kerastl.model
    import kerastl.training

    assert kerastl.build is kerastl.model.build
    assert kerastl.fit is kerastl.training.fit
    assert callable(kerastl.export) and kerastl.export.export is not None
    for name in kerastl.__all__:
        assert getattr(kerastl, name) is not None, name
    assert {"build", "fit", "load_predictor", "data"} <= set(dir(kerastl))
    with pytest.raises(AttributeError, match="no attribute 'bulid'"):
        kerastl.bulid  # noqa: B018


def test_every_name_in_all_resolves_lazily_from_a_bare_import():
    # A fresh process: nothing but `import kerastl` has run, so every name goes through the
    # lazy `__getattr__` (or is a plain global, as `__version__` and `register_serializables`).
    code = (
        "import importlib, kerastl\n"
        "lazy, subs = kerastl._LAZY_NAMES, kerastl._SUBMODULES\n"
        "bad = []\n"
        "for name in kerastl.__all__:\n"
        "    if name not in lazy and name not in subs and name not in vars(kerastl):\n"
        "        bad.append(name + ': neither lazy nor defined')\n"
        "    try:\n"
        "        value = getattr(kerastl, name)\n"
        "    except Exception as e:\n"
        "        bad.append(f'{name}: {type(e).__name__}: {e}')\n"
        "        continue\n"
        "    if name in lazy:\n"
        "        module = importlib.import_module(lazy[name])\n"
        "        public = getattr(module, '__all__', [name])\n"
        "        if getattr(module, name) is not value or name not in public:\n"
        "            bad.append(name + ': not the public name of ' + lazy[name])\n"
        "for name in subs:\n"
        "    if getattr(kerastl, name) is not importlib.import_module('kerastl.' + name):\n"
        "        bad.append(name + ': not the submodule')\n"
        "print(bad)\n")
    assert _python(code).stdout.strip().splitlines()[-1] == "[]"


def test_the_registry_functions_are_all_top_level():
    import kerastl.backbones

    assert kerastl.unregister_backbone is kerastl.backbones.unregister_backbone
    assert kerastl.register_backbone is kerastl.backbones.register_backbone
    assert {"register_backbone", "unregister_backbone", "load_predictor",
            "Predictor"} <= set(kerastl.__all__)


def test_the_import_hook_is_gone_once_it_registered():
    import keras  # noqa: F401 (the test session has imported Keras)

    assert not any(getattr(f, "kerastl_hook", False) for f in sys.meta_path)


def test_kerastl_fit_stays_the_function_whatever_is_imported_first():
    # The function's module is kerastl.training.fitting: importing it first must not bind
    # the name `fit` of kerastl.training (and so kerastl.fit) to a module.
    code = ("import kerastl.training.fitting, kerastl.training.stage, kerastl\n"
            "print(callable(kerastl.fit), kerastl.fit.__module__, "
            "kerastl.training.fit is kerastl.fit)")
    assert _python(code).stdout.strip().splitlines()[-1] == (
        "True kerastl.training.fitting True")
