"""Knowledge distillation: a large trained kerastl model teaches a phone-sized one.

`distill` (exposed as `kerastl.distill`) trains a student from `kerastl.build`
to match a teacher (or an ensemble) with Keras's own
`keras.distillation.Distiller`, wrapped in kerastl's recipes (frozen then
unfrozen stages, per-block learning rates, the BatchNorm rule, resumable
checkpoints, distribution strategies). Following "patient and consistent"
distillation (function matching, Beyer et al. 2022), teacher and student see
the same augmented view; the views are fixed, so the teacher's outputs on
them are computed once (`TeacherCache`) and long schedules cost only the
student. Unlabelled images add the distillation term only.

Example:
    >>> data = kerastl.data.from_directory("flowers", image_size=224, validation_split=0.2)
    >>> student = kerastl.build("mobilenet", data.num_classes, input_shape=160,
    ...                         backbone_kwargs={"alpha": 0.25})
    >>> report = kerastl.distillation.distill(teacher, student, data)
    >>> kerastl.export(student, "saved_models/small", representative_data=data.train)
"""

from kerastl._lazy import attributes

_LAZY = {
    "DistillReport": "core", "agreement": "core", "distill": "core",
    "MaskedCategoricalCrossentropy": "losses", "TeacherCache": "teacher",
    "compare": "compare", "compare_table": "compare", "ComparisonRow": "compare",
}


__getattr__, __dir__ = attributes(__name__, _LAZY)


__all__ = ["ComparisonRow", "DistillReport", "MaskedCategoricalCrossentropy", "TeacherCache",
           "agreement", "compare", "compare_table", "distill"]
