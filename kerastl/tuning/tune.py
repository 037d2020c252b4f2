"""`kerastl.tune`: search unfreeze depth and learning rates with keras-tuner."""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import io
import json
import math
import random
import re
import time
from pathlib import Path

import keras_tuner

from kerastl._validation import check_int, check_one_of, suggest
from kerastl.tuning.hypermodel import TransferHyperModel
from kerastl.tuning.result import TuneResult
from kerastl.tuning.space import SearchSpace, _spec_of, as_search_space
from kerastl.tuning.tuners import check_algorithm, make_tuner, read_trial_record

# Arguments of kerastl.build / kerastl.fit that tune sets itself, per trial.
_BUILD_OWNED = ("backbone", "num_classes", "trainable_blocks", "strategy")
_FIT_OWNED = ("model", "train", "validation_data", "recipe", "epochs", "fine_tune_epochs",
              "learning_rate", "backbone_learning_rate", "layer_decay", "trainable_blocks",
              "strategy", "seed", "verbose", "feature_cache", "cache_features")
_CACHE_COUNTERS = ("backbone_batches", "derived_batches", "hits", "memory_bytes")
PROJECT_FILE = "kerastl_project.json"
_RESUME_KEYS = ("backbone", "num_classes", "algorithm", "objective", "max_epochs",
                "search_space", "build_kwargs")


def _allowed_args(fn, owned) -> list[str]:
    return [name for name, p in inspect.signature(fn).parameters.items()
            if name not in owned and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]


def _check_args(given: dict, fn, owned, what: str) -> dict:
    allowed = _allowed_args(fn, owned)
    unknown = [k for k in given if k not in allowed]
    if unknown:
        parts = []
        for key in unknown:
            close = suggest(key, allowed, n=1)
            hint = (f" (did you mean {close[0]!r}?)" if close else
                    " (set by tune itself)" if key in owned else "")
            parts.append(f"{key!r}{hint}")
        raise ValueError(f"Unknown {what} argument(s) for kerastl.tune: {', '.join(parts)}. "
                         f"Valid: {', '.join(sorted(allowed))}. Received: {dict(given)!r}")
    return dict(given)


def _check_bool(name, value):
    if not isinstance(value, bool):
        raise ValueError(f"`{name}` must be True or False. Received: {name}={value!r}")
    return value


def _objective(objective):
    if isinstance(objective, keras_tuner.Objective):
        return objective
    if not isinstance(objective, str) or not objective:
        raise ValueError("`objective` must be a metric name such as 'val_accuracy' or "
                         f"'val_loss'. Received: objective={objective!r}")
    minimize = any(word in objective for word in ("loss", "error", "mae", "mse"))
    return keras_tuner.Objective(objective, direction="min" if minimize else "max")


def _num_classes(num_classes, train, build_kwargs):
    if num_classes is not None or build_kwargs.get("task") == "regression":
        return num_classes
    names = build_kwargs.get("class_names") or getattr(train, "class_names", None)
    if names:
        return len(names)
    raise ValueError("Pass `num_classes`: it could not be read from the training data "
                     "(no `class_names`). Received: num_classes=None")


def _project_name(backbone: str, algorithm: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{backbone.split('/')[-1]}_{algorithm}")


def _stable(value):
    """Returns `value` as JSON data that is the same in every session (for resume checks)."""
    if isinstance(value, dict):
        return {str(k): _stable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_stable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _stable(dataclasses.asdict(value))
    get_config = getattr(value, "get_config", None)
    if callable(get_config):
        config = {k: v for k, v in get_config().items() if k != "name"}
        return {"class": type(value).__name__, "config": _stable(config)}
    return type(value).__name__


def _project_config(project_dir: Path, config: dict, overwrite: bool) -> dict:
    """Reads/writes the project's kerastl settings; refuses to resume a different search."""
    path = project_dir / PROJECT_FILE
    if path.is_file() and not overwrite:
        saved = json.loads(path.read_text())
        current = _stable(config)
        changed = [k for k in _RESUME_KEYS if saved.get(k) != current.get(k)]
        if changed:
            raise ValueError(
                f"The project {str(project_dir)!r} holds a search with other settings "
                f"({', '.join(changed)}); pass overwrite=True to start over or another "
                f"`project_name`. Received: "
                + ", ".join(f"{k}={current.get(k)!r} (saved {saved.get(k)!r})" for k in changed))
        return saved
    project_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_stable(config), indent=1))
    return config


def _trials_table(tuner, space_decode) -> list[dict]:
    rows = []
    oracle = tuner.oracle
    for trial_id in oracle.start_order:
        trial = oracle.trials[trial_id]
        values = dict(trial.hyperparameters.values)
        record = read_trial_record(tuner.get_trial_dir(trial_id))
        epochs = record.get("epochs")
        if epochs is None and "tuner/epochs" in values:
            epochs = values["tuner/epochs"] - values.get("tuner/initial_epoch", 0)
        error = record.get("error")
        if trial.status == "FAILED" and not error and trial.message:
            error = trial.message.strip().splitlines()[-1]
        score = trial.score if trial.status == "COMPLETED" else None
        rows.append({
            "trial_id": trial_id, "status": trial.status,
            "score": None if score is None or math.isnan(score) else float(score),
            "epochs": epochs, "seconds": record.get("seconds"),
            "hyperparameters": space_decode(values),
            "continued_from": values.get("tuner/trial_id"),
            "trainable_params": record.get("trainable_params"),
            "shared_head_warmup": record.get("shared_head_warmup"),
            "warmup_epochs": record.get("warmup_epochs"), "pruned": record.get("pruned"),
            "error": error if trial.status != "COMPLETED" else None,
        })
    return rows


def _cache_counters(cache) -> dict | None:
    if cache is None:
        return None
    return {name: getattr(cache, name) for name in _CACHE_COUNTERS if hasattr(cache, name)}


def tune(train, validation_data=None, *, backbone, num_classes=None, search_space=None,
         algorithm="hyperband", max_trials=None, max_epochs=6, objective="val_accuracy",
         directory="kerastl_tune", project_name=None, overwrite=False, strategy=None, seed=None,
         verbose=1, refit=True, hyperband_factor=3, max_consecutive_failed_trials=3,
         cache_features=True, share_warmup=True, warmup_epochs=None, prune=True,
         fit_kwargs=None, **build_kwargs) -> TuneResult:
    """Searches unfreeze depth, learning rates, dropout and recipe with keras-tuner.

    Each trial builds a model with `kerastl.build` and trains it with
    `kerastl.fit`'s recipe. Trials are cheap where they can be: all trials
    share one cache of backbone features (and of the frozen part below each
    unfreeze depth); the head warm-up on those features is trained once per
    head learning rate and dropout and shared by every trial with those
    values; the epoch budget goes to the fine-tuning epochs only (those that
    run the unfrozen blocks); a fine-tuning stage that scores clearly worse
    than its warm-up is stopped (`prune`); and Hyperband stops poor settings
    early. Every trial's wall time is recorded.
    Rerunning with the same `directory`/`project_name` resumes the search
    (finished trials are never redone); a trial that raises (out of memory,
    ...) is recorded as ``"FAILED"`` with its error and the search goes on.

    All trials start from the same initial weights (a seed is set before each
    build: `seed`, or one drawn once per project), so they differ only by
    their hyperparameters and can share cached features.

    Args:
        train: Training batches of (images, labels): a `tf.data.Dataset` (as in
            `kerastl.data.ImageData.train`) or a `kerastl.data.ImageData` (then
            `validation_data` defaults to its validation split).
        validation_data: Validation batches; the objective is measured on them.
        backbone: Registry name (`kerastl.list_backbones`) or ``"hub:<handle>"``.
        num_classes: Number of classes; default from the data's ``class_names``.
        search_space: A `kerastl.SearchSpace`, a dict of its arguments, or None for
            `kerastl.SearchSpace.default_for(backbone)`.
        algorithm: ``"hyperband"``, ``"bayesian"`` (needs scikit-learn) or ``"random"``.
        max_trials: Cap on the number of trials (Hyperband counts each round's
            continuation as a trial). Default: one Hyperband iteration, or 10.
        max_epochs: Fine-tuning epochs of each trial (Hyperband: of its longest
            trials), after the shared head warm-up. Default 6, as `kerastl.fit`.
        objective: Validation metric to optimize (``"val_accuracy"``,
            ``"val_loss"``, ...) or a `keras_tuner.Objective`.
        directory: Folder holding the project's state.
        project_name: Project folder; default ``"<backbone>_<algorithm>"``.
        overwrite: Start over instead of resuming the project.
        strategy: A `tf.distribute.Strategy` or `kerastl.distribute.get_strategy`
            kind, given to keras-tuner's ``distribution_strategy`` and `kerastl.fit`.
        seed: Seed of the oracle, of the builds and of `kerastl.fit`.
        verbose: 0 (silent), 1 (keras-tuner's trial log) or 2 (also `kerastl.fit`'s).
        refit: Rebuild and train the best setting for `max_epochs` with
            `kerastl.fit` (True), or reload the best trial's weights (False).
        hyperband_factor: Hyperband's reduction factor.
        max_consecutive_failed_trials: Stop the search after this many failures in a row.
        cache_features: Share one new `kerastl.training.FeatureCache` among the
            trials (True), pass a `FeatureCache` to share one across calls (a
            resumed search in the same session), or False (no caching).
        share_warmup: Share head warm-ups among trials.
        warmup_epochs: Epochs of a head warm-up (None: `kerastl.fit`'s default
            for a head stage, 30 on cached features, with early stopping).
        prune: Stop a fine-tuning stage at the end of an epoch that scores more
            than 10% (relative) worse than the warm-up it started from (50% after
            its first epoch, which may dip before it recovers).
        fit_kwargs: Other `kerastl.fit` arguments (``class_weight``, ``callbacks``, ...).
        **build_kwargs: Other `kerastl.build` arguments (``input_shape``,
            ``weights``, ``backbone_kwargs``, ``head``, ``augmentation``, ...).

    Returns:
        A `kerastl.TuneResult`.

    Example:
        >>> data = kerastl.data.from_directory("flowers", image_size=160, validation_split=0.2)
        >>> result = kerastl.tune(data.train, data.validation, backbone="mobilenet_v2",
        ...                       input_shape=(160, 160, 3), max_epochs=6)
        >>> print(result.summary())
        >>> result.best_hyperparameters["trainable_blocks"]
        4
    """
    from kerastl import model as model_lib
    from kerastl import training

    from kerastl.data import ImageData

    if isinstance(train, ImageData):
        validation_data = train.validation if validation_data is None else validation_data
        train = train.train
    if validation_data is None:
        raise ValueError("kerastl.tune needs `validation_data` to score trials. "
                         "Received: validation_data=None")
    build_kwargs = _check_args(build_kwargs, model_lib.build, _BUILD_OWNED, "kerastl.build")
    fit_kwargs = _check_args(dict(fit_kwargs or {}), training.fit, _FIT_OWNED, "kerastl.fit")
    check_algorithm(algorithm)
    check_one_of("verbose", verbose, (0, 1, 2))
    for name, value in (("overwrite", overwrite), ("refit", refit),
                        ("share_warmup", share_warmup), ("prune", prune)):
        _check_bool(name, value)
    if not isinstance(cache_features, training.FeatureCache):
        _check_bool("cache_features", cache_features)
    if max_trials is not None:
        check_int("max_trials", max_trials, minimum=1)
    check_int("max_epochs", max_epochs, minimum=1)
    if warmup_epochs is not None:
        check_int("warmup_epochs", warmup_epochs, minimum=1)
    check_int("hyperband_factor", hyperband_factor, minimum=2)
    check_int("max_consecutive_failed_trials", max_consecutive_failed_trials, minimum=1)
    if seed is not None:
        check_int("seed", seed, minimum=0)
    if not isinstance(backbone, str):
        raise TypeError("`backbone` must be a registry name or 'hub:<handle>' (each trial "
                        f"builds its own copy). Received: backbone={backbone!r}")
    space = as_search_space(search_space, backbone)
    objective = _objective(objective)
    num_classes = _num_classes(num_classes, train, build_kwargs)
    num_blocks = _spec_of(backbone).num_blocks
    if isinstance(strategy, str):
        from kerastl.distribute import get_strategy

        strategy = get_strategy(strategy)

    directory = Path(directory)
    project_name = project_name or _project_name(backbone, algorithm)
    config = _project_config(directory / project_name, {
        "backbone": backbone, "num_classes": num_classes, "algorithm": algorithm,
        "objective": objective.name, "max_epochs": max_epochs,
        "search_space": space.to_dict(), "build_kwargs": build_kwargs,
        "build_seed": seed if seed is not None else random.randrange(2**31)}, overwrite)

    if isinstance(cache_features, training.FeatureCache):
        cache = cache_features
    else:
        cache = training.FeatureCache() if cache_features else None
        if not cache_features:
            fit_kwargs["cache_features"] = False
    hypermodel = TransferHyperModel(
        backbone=backbone, num_classes=num_classes, space=space, build_kwargs=build_kwargs,
        fit_kwargs=fit_kwargs, objective=objective.name, direction=objective.direction,
        build_seed=int(config["build_seed"]), feature_cache=cache, strategy=strategy,
        seed=seed, verbose=1 if verbose == 2 else 0, share_warmup=share_warmup,
        warmup_epochs=warmup_epochs, prune=prune, num_blocks=num_blocks)
    quiet = contextlib.redirect_stdout(io.StringIO()) if verbose == 0 else contextlib.nullcontext()
    start = time.perf_counter()
    with quiet:
        tuner = make_tuner(algorithm, hypermodel, objective=objective, max_trials=max_trials,
                           max_epochs=max_epochs, factor=hyperband_factor, seed=seed,
                           directory=directory, project_name=project_name, overwrite=overwrite,
                           strategy=strategy,
                           max_consecutive_failed_trials=max_consecutive_failed_trials)
        tuner.oracle.verbose = verbose
        tuner.search(train, validation_data)
    seconds = time.perf_counter() - start
    result = TuneResult(trials=_trials_table(tuner, SearchSpace.decode),
                        objective=objective.name, direction=objective.direction,
                        num_blocks=num_blocks, seconds=seconds,
                        feature_cache=_cache_counters(cache))
    result.tuner = tuner
    if result.best_trial is not None:
        _attach_best_model(result, tuner, hypermodel, train, validation_data, refit=refit,
                           max_epochs=max_epochs)
    return result


def _attach_best_model(result, tuner, hypermodel, train, validation_data, *, refit, max_epochs):
    trial = tuner.oracle.get_trial(result.best_trial["trial_id"])
    if not refit:
        result._load_best_model = lambda: tuner.load_model(trial)
        return
    hp = trial.hyperparameters.copy()
    hp.values = {k: v for k, v in hp.values.items() if not k.startswith("tuner/")}
    model = tuner._try_build(hp)
    start = time.perf_counter()
    metrics = hypermodel.fit(hp, model, train, validation_data, epochs=max_epochs, prune=False)
    result.best_model = model
    result.best_report = list(hypermodel.last_reports)
    result.refit_metrics = dict(metrics, seconds=round(time.perf_counter() - start, 3))


__all__ = ["tune"]
