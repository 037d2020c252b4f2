"""`kerastl.tune`: search unfreeze depth and learning rates with keras-tuner."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import random
import re
import time
import warnings
from pathlib import Path

from kerastl._validation import check_bool, check_int, check_one_of
from kerastl.tuning import arguments
from kerastl.tuning.hypermodel import INFO_METRICS, TransferHyperModel
from kerastl.tuning.result import TuneResult
from kerastl.tuning.space import SearchSpace, _spec_of, as_search_space
from kerastl.tuning.tuners import check_algorithm, make_tuner, read_trial_record

# Arguments of kerastl.build / kerastl.fit that tune sets itself, per trial.
_CACHE_COUNTERS = ("backbone_batches", "derived_batches", "hits", "memory_bytes")
PROJECT_FILE = "kerastl_project.json"
_RESUME_KEYS = ("backbone", "num_classes", "algorithm", "objective", "fine_tune_epochs",
                "search_space", "build_kwargs")


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
        if "max_epochs" in saved and "fine_tune_epochs" not in saved:  # written before 0.2
            saved["fine_tune_epochs"] = saved.pop("max_epochs")
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


def _info(trial, field):
    """Returns a trial's reported fact `field` (see `INFO_METRICS`), or None when absent."""
    name = INFO_METRICS[field]
    if not trial.metrics.exists(name):
        return None
    return trial.metrics.get_last_value(name)


def _trials_table(tuner, space_decode) -> list[dict]:
    rows = []
    oracle = tuner.oracle
    for trial_id in oracle.start_order:
        trial = oracle.trials[trial_id]
        values = dict(trial.hyperparameters.values)
        record = read_trial_record(tuner.get_trial_dir(trial_id))
        error = record.get("error")
        if trial.status == "FAILED" and not error and trial.message:
            error = trial.message.strip().splitlines()[-1]
        score = trial.score if trial.status == "COMPLETED" else None
        facts = {f: _info(trial, f) for f in INFO_METRICS}
        settled = bool(facts["settled"])
        rows.append({
            "trial_id": trial_id, "status": trial.status,
            "score": None if score is None or math.isnan(score) else float(score),
            "epochs": None if facts["epochs"] is None else int(facts["epochs"]),
            "seconds": 0.0 if settled else record.get("seconds"),
            "hyperparameters": space_decode(values),
            "continued_from": values.get("tuner/trial_id"),
            "trainable_params": (None if facts["trainable_params"] is None
                                 else int(facts["trainable_params"])),
            "shared_head_warmup": (None if facts["shared_head_warmup"] is None
                                   else bool(facts["shared_head_warmup"])),
            "head_epochs": None if facts["head_epochs"] is None else int(facts["head_epochs"]),
            "pruned": None if facts["pruned"] is None else bool(facts["pruned"]),
            "settled": settled,
            "error": error if trial.status != "COMPLETED" else None,
        })
    return rows


def _cache_counters(cache) -> dict | None:
    if cache is None:
        return None
    return {name: getattr(cache, name) for name in _CACHE_COUNTERS if hasattr(cache, name)}


def tune(train, validation_data=None, *, backbone, num_classes=None, search_space=None,
         algorithm="hyperband", max_trials=None, epochs=None, fine_tune_epochs=None,
         objective="val_accuracy", directory="kerastl_tune", project_name=None, overwrite=False,
         strategy=None, seed=None, verbose=1, refit=True, hyperband_factor=3,
         max_consecutive_failed_trials=3, cache_features=True, feature_cache=None,
         share_warmup=True, prune=True, build_kwargs=None, fit_kwargs=None,
         keep_backbones=2, rank_metric="logme", **deprecated_kwargs) -> TuneResult:
    """Searches unfreeze depth, learning rates, dropout and recipe with keras-tuner.

    Each trial builds a model with `kerastl.build` and trains it with
    `kerastl.fit`'s recipe. Trials are cheap where they can be: all trials
    share one cache of backbone features (and of the frozen part below each
    unfreeze depth); the head stage on those features is trained once per
    head learning rate and dropout and shared by every trial with those
    values; the epoch budget goes to the fine-tuning epochs only (those that
    run the unfrozen blocks); a fine-tuning stage that scores clearly worse
    than its start is stopped (`prune`); and Hyperband stops poor settings
    early, without rerunning settings that more epochs cannot change. Every
    trial's wall time is recorded. The arguments, the objective and the
    input size are checked before the first trial.
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
        backbone: Registry name (`kerastl.list_backbones`), ``"hub:<handle>"``,
            ``"kerashub:<preset>"``, or a list of them: the backbones are then
            ranked first (`kerastl.rank_backbones` on the training + validation
            images) and only the `keep_backbones` best are searched
            (`kerastl.tuning.backbones.tune_backbones`).
        num_classes: Number of classes; default from the data's ``class_names``
            (and checked against them when given).
        search_space: A `kerastl.SearchSpace`, a dict of its arguments (as
            `kerastl.SearchSpace.from_dict`), or None for
            `kerastl.SearchSpace.default_for(backbone)`. With several
            backbones, a dict without ``trainable_blocks`` gets each one's
            default depths.
        algorithm: ``"hyperband"``, ``"bayesian"`` (needs scikit-learn) or ``"random"``.
        max_trials: Cap on the number of trials (Hyperband counts each round's
            continuation as a trial). Default: one Hyperband iteration, or 10.
        epochs: Epochs of a head stage, as `kerastl.fit`'s `epochs` (None: its
            default for a head stage, 30 on cached features, with early stopping).
        fine_tune_epochs: Fine-tuning epochs of each trial (Hyperband: of its
            longest trials) and of the refit, after the head stage; an integer
            >= 1. Default 6, as `kerastl.fit`.
        objective: Validation metric to optimize (``"val_accuracy"``,
            ``"val_loss"``, ...: one `kerastl.fit` reports) or a `keras_tuner.Objective`.
        directory: Folder holding the project's state.
        project_name: Project folder; default ``"<backbone>_<algorithm>"``.
        overwrite: Start over instead of resuming the project.
        strategy: A `tf.distribute.Strategy` or `kerastl.distribute.get_strategy`
            kind, given to keras-tuner's ``distribution_strategy``, `kerastl.build`
            and `kerastl.fit`.
        seed: Seed of the oracle, of the builds and of `kerastl.fit`.
        verbose: 0 (silent), 1 (keras-tuner's trial log) or 2 (also `kerastl.fit`'s).
        refit: Rebuild and train the best setting for `fine_tune_epochs` with
            `kerastl.fit` (True), or reload the best trial's weights (False).
        hyperband_factor: Hyperband's reduction factor.
        max_consecutive_failed_trials: Stop the search after this many failures in a row.
        cache_features: Cache backbone features for the trials (as in `kerastl.fit`).
        feature_cache: A `kerastl.training.FeatureCache` to share across calls (a
            resumed search in the same session); None: a new one for this call.
        share_warmup: Share head stages among trials.
        prune: Stop a fine-tuning stage at the end of an epoch that scores more
            than 10% (relative) worse than the stage it started from (50% after
            its first epoch, which may dip before it recovers).
        build_kwargs: Other `kerastl.build` arguments (``input_shape``, ``weights``,
            ``backbone_kwargs``, ``head``, ``augmentation``, ...). Default
            ``input_shape``: the training images' size.
        fit_kwargs: Other `kerastl.fit` arguments (``class_weight``, ``callbacks``, ...).
        keep_backbones: With a list of backbones: how many of the best-ranked
            are searched.
        rank_metric: With a list of backbones: the ranking's metric,
            ``"logme"`` or ``"linear_probe"``.
        **deprecated_kwargs: ``max_epochs`` (now `fine_tune_epochs`),
            ``warmup_epochs`` (now `epochs`) and `kerastl.build` arguments given
            directly (now in `build_kwargs`) still work, with a FutureWarning.

    Returns:
        A `kerastl.TuneResult`.

    Example:
        >>> data = kerastl.data.from_directory("flowers", image_size=160, validation_split=0.2)
        >>> result = kerastl.tune(data, backbone="mobilenet_v2", fine_tune_epochs=6)
        >>> print(result.summary())
        >>> result.best_hyperparameters["trainable_blocks"]
        4
    """
    from kerastl import distribute, training
    from kerastl import model as model_lib
    from kerastl.data import ImageData

    if isinstance(backbone, (list, tuple)):
        from kerastl.tuning.backbones import tune_backbones

        return tune_backbones(
            train, validation_data, backbones=backbone, keep_backbones=keep_backbones,
            rank_metric=rank_metric, build_kwargs=build_kwargs, feature_cache=feature_cache,
            project_name=project_name, algorithm=algorithm, verbose=verbose,
            num_classes=num_classes, search_space=search_space, max_trials=max_trials,
            epochs=epochs, fine_tune_epochs=fine_tune_epochs, objective=objective,
            directory=directory, overwrite=overwrite, strategy=strategy, seed=seed,
            refit=refit, hyperband_factor=hyperband_factor,
            max_consecutive_failed_trials=max_consecutive_failed_trials,
            cache_features=cache_features, share_warmup=share_warmup, prune=prune,
            fit_kwargs=fit_kwargs, **deprecated_kwargs)
    renamed = {k: deprecated_kwargs.pop(k) for k in list(deprecated_kwargs)
               if k in arguments.RENAMED}
    args = arguments.renamed(renamed, {"epochs": epochs, "fine_tune_epochs": fine_tune_epochs})
    epochs, fine_tune_epochs = args["epochs"], args["fine_tune_epochs"]
    if isinstance(cache_features, training.FeatureCache):  # the earlier bool-or-cache form
        warnings.warn("kerastl.tune(cache_features=<FeatureCache>) is deprecated; use "
                      "feature_cache=<FeatureCache> instead.", FutureWarning, stacklevel=2)
        if feature_cache is not None:
            raise ValueError("Pass the cache once, as `feature_cache`. Received: "
                             "cache_features=<FeatureCache>, feature_cache=<FeatureCache>")
        cache_features, feature_cache = True, cache_features
    class_names = getattr(train, "class_names", None)
    if isinstance(train, ImageData):
        validation_data = train.validation if validation_data is None else validation_data
        train = train.train
    if validation_data is None:
        raise ValueError("kerastl.tune needs `validation_data` to score trials. "
                         "Received: validation_data=None")
    build_kwargs = arguments.check_args(arguments.flat_build_kwargs({}, build_kwargs),
                                        model_lib.build, arguments.BUILD_OWNED, "kerastl.build")
    if deprecated_kwargs:
        flat = arguments.check_args(deprecated_kwargs, model_lib.build, arguments.BUILD_OWNED,
                                    "kerastl.build")
        warnings.warn("Passing kerastl.build arguments directly to kerastl.tune "
                      f"({', '.join(sorted(flat))}) is deprecated; pass them in "
                      "`build_kwargs` instead.", FutureWarning, stacklevel=2)
        build_kwargs = arguments.flat_build_kwargs(flat, build_kwargs)
    fit_kwargs = arguments.check_args(dict(fit_kwargs or {}), training.fit, arguments.FIT_OWNED,
                                      "kerastl.fit")
    check_algorithm(algorithm)
    check_one_of("verbose", verbose, (0, 1, 2))
    for name, value in (("overwrite", overwrite), ("refit", refit), ("cache_features",
                        cache_features), ("share_warmup", share_warmup), ("prune", prune)):
        check_bool(name, value)
    if feature_cache is not None and not isinstance(feature_cache, training.FeatureCache):
        raise TypeError("`feature_cache` must be a kerastl.training.FeatureCache or None. "
                        f"Received: feature_cache={feature_cache!r}")
    if feature_cache is not None and not cache_features:
        raise ValueError("`feature_cache` needs cache_features=True. "
                         "Received: cache_features=False with a feature_cache")
    if max_trials is not None:
        check_int("max_trials", max_trials, minimum=1)
    if fine_tune_epochs is None:
        fine_tune_epochs = training.recipes.FINE_TUNE_EPOCHS
    check_int("fine_tune_epochs", fine_tune_epochs, minimum=1)
    if epochs is not None:
        check_int("epochs", epochs, minimum=1)
    check_int("hyperband_factor", hyperband_factor, minimum=2)
    check_int("max_consecutive_failed_trials", max_consecutive_failed_trials, minimum=1)
    if seed is not None:
        check_int("seed", seed, minimum=0)
    if not isinstance(backbone, str):
        raise TypeError("`backbone` must be a registry name, 'hub:<handle>' or a list of them "
                        f"(each trial builds its own copy). Received: backbone={backbone!r}")
    space = as_search_space(search_space, backbone)
    num_classes = arguments.num_classes(num_classes, class_names, build_kwargs)
    objective = arguments.objective(objective, build_kwargs.get("task") or "multiclass",
                                    num_classes)
    build_kwargs = arguments.input_shape(build_kwargs, train, backbone)
    num_blocks = _spec_of(backbone).num_blocks
    strategy = distribute.resolve_strategy(strategy)

    directory = Path(directory)
    project_name = project_name or _project_name(backbone, algorithm)
    config = _project_config(directory / project_name, {
        "backbone": backbone, "num_classes": num_classes, "algorithm": algorithm,
        "objective": objective.name, "fine_tune_epochs": fine_tune_epochs,
        "search_space": space.to_dict(), "build_kwargs": build_kwargs,
        "build_seed": seed if seed is not None else random.randrange(2**31)}, overwrite)

    cache = None
    if cache_features:
        cache = feature_cache if feature_cache is not None else training.FeatureCache()
    else:
        fit_kwargs["cache_features"] = False
    hypermodel = TransferHyperModel(
        backbone=backbone, num_classes=num_classes, space=space, build_kwargs=build_kwargs,
        fit_kwargs=fit_kwargs, objective=objective.name, direction=objective.direction,
        build_seed=int(config["build_seed"]), feature_cache=cache, strategy=strategy,
        seed=seed, verbose=1 if verbose == 2 else 0, share_warmup=share_warmup,
        epochs=epochs, prune=prune, num_blocks=num_blocks)
    quiet = contextlib.redirect_stdout(io.StringIO()) if verbose == 0 else contextlib.nullcontext()
    start = time.perf_counter()
    with quiet:
        tuner = make_tuner(algorithm, hypermodel, objective=objective, max_trials=max_trials,
                           max_epochs=fine_tune_epochs, factor=hyperband_factor, seed=seed,
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
                           epochs=fine_tune_epochs)
    return result


def _trained_trial(oracle, trial):
    """Returns the trial whose weights `trial` holds (a settled continuation: its earlier one)."""
    settled = INFO_METRICS["settled"]
    while trial.metrics.exists(settled) and trial.metrics.get_last_value(settled):
        trial = oracle.get_trial(trial.hyperparameters.values["tuner/trial_id"])
    return trial


def _attach_best_model(result, tuner, hypermodel, train, validation_data, *, refit, epochs):
    trial = _trained_trial(tuner.oracle, tuner.oracle.get_trial(result.best_trial["trial_id"]))
    if not refit:
        result._load_best_model = lambda: tuner.load_model(trial)
        return
    hp = trial.hyperparameters.copy()
    hp.values = {k: v for k, v in hp.values.items() if not k.startswith("tuner/")}
    model = hypermodel.build(hp)
    start = time.perf_counter()
    outcome = hypermodel.train(hp, model, train, validation_data, epochs=epochs, prune=False)
    result.best_model = model
    result.best_report = list(outcome.reports)
    result.refit_metrics = dict(outcome.metrics, seconds=round(time.perf_counter() - start, 3))


__all__ = ["tune"]
