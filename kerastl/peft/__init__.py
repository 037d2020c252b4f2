"""Parameter-efficient fine-tuning: LoRA, BitFit and BatchNorm-affine tuning of a kerastl model.

* `kerastl.peft.apply(model, "lora", rank=8, blocks=4)` prepares a built model;
  ``kerastl.fit(model, data, peft="lora")`` (or a `PeftConfig`) applies and
  trains it: the head in closed form, then only the PEFT variables and the head.
* `kerastl.peft.save` / `kerastl.peft.load`: adapter-only files (kilobytes)
  applied to a freshly built base model.
* `kerastl.peft.merge`: LoRA folded into the kernels (`kerastl.export` does it
  automatically).

Example:
    >>> model = kerastl.build("mobilenet_v2", data.num_classes, input_shape=224)
    >>> report = kerastl.fit(model, data, peft=kerastl.peft.PeftConfig("lora", rank=8))
    >>> kerastl.peft.save(model, "flowers.peft.weights.h5")
"""

from kerastl.peft.config import METHODS, PeftConfig
from kerastl.peft.core import (PeftSummary, apply, get_config, lora_layers, merge,
                               peft_variables, summarize)
from kerastl.peft.files import load, read_config, save

__all__ = ["METHODS", "PeftConfig", "PeftSummary", "apply", "get_config", "load", "lora_layers",
           "merge", "peft_variables", "read_config", "save", "summarize"]
