"""What `kerastl.backbones.hub.HubBackbone` reads from a loaded TF2 SavedModel.

The function to call (``__call__`` or a named signature) and its image input,
the input specs it was traced with, the ``training`` values it accepts, and its
trainable and non-trainable variables.
"""

from __future__ import annotations

import inspect

from kerastl._validation import check_one_of


def select_callable(obj, signature, handle):
    """Returns (function, input keyword or None) to call for `signature`."""
    if signature is None:
        if callable(obj):
            return obj.__call__, None
        raise ValueError(
            f"The SavedModel of {handle!r} has no __call__ (it is not a reusable TF Hub "
            f"SavedModel). Pass `signature`, one of {sorted(obj.signatures)}.")
    signature = check_one_of("signature", signature, sorted(obj.signatures))
    fn = obj.signatures[signature]
    names = sorted(fn.structured_input_signature[1])
    if len(names) != 1:
        raise ValueError(f"Signature {signature!r} of {handle!r} takes inputs {names}; "
                         "HubBackbone supports signatures with one image input.")
    return fn, names[0]


def concrete_functions(fn):
    """Returns the concrete functions of a restored function (or `fn` itself)."""
    return list(getattr(fn, "concrete_functions", None) or [fn])


def input_specs(fn, input_name):
    """Returns the distinct image `tf.TensorSpec`s `fn` accepts."""
    specs = []
    for concrete in concrete_functions(fn):
        args, kwargs = concrete.structured_input_signature
        spec = kwargs[input_name] if input_name else args[0]
        if spec not in specs:
            specs.append(spec)
    return specs


def training_values(fn, input_name) -> tuple:
    """Returns the Python values of ``training`` the SavedModel was traced with."""
    if input_name is not None or "training" not in inspect.signature(fn).parameters:
        return ()
    values = set()
    for concrete in concrete_functions(fn):
        args, kwargs = concrete.structured_input_signature
        value = kwargs.get("training", args[1] if len(args) > 1 else False)
        if isinstance(value, bool):
            values.add(value)
    return tuple(sorted(values))


def hub_variables(obj, fn):
    """Returns (trainable, non-trainable) `tf.Variable` lists of a loaded SavedModel."""
    all_vars = list(getattr(obj, "variables", None) or [])
    trainable = list(getattr(obj, "trainable_variables", None) or [])
    if not all_vars:  # Not a reusable SavedModel: take what its functions capture.
        seen = {}
        for concrete in concrete_functions(fn):
            for v in concrete.variables:
                seen.setdefault(id(v), v)
        all_vars = list(seen.values())
        trainable = [v for v in all_vars if v.trainable]
    trainable_ids = {id(v) for v in trainable}
    return trainable, [v for v in all_vars if id(v) not in trainable_ids]


__all__ = ["concrete_functions", "hub_variables", "input_specs", "select_callable",
           "training_values"]
