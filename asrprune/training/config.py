"""YAML training configs with ``--set section.key=value`` overrides from the command line, checked completely
before any work starts.

Every key at every depth must be one asrprune knows: the ``data`` and ``optim`` keys of :data:`DEFAULT_CONFIG`,
ESPnet's ``ConformerEncoder`` and ``SpecAug`` keyword arguments for ``model.encoder`` and ``model.specaug``, the
output layer's constructor for ``model.output_layer``, Lightning ``Trainer`` arguments for ``trainer``. A misspelt
key is rejected with the nearest known one (difflib), a value of the wrong type with the type expected (from the
default, or from the signature's annotation), each naming the file and line or the ``--set`` that gave it.
"""
from __future__ import annotations

import collections.abc
import copy
import difflib
import inspect
import types
import typing
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, Union

import yaml

DEFAULT_CONFIG = {
    "seed": 0,
    "model": {
        "num_mel_bins": 80,
        "encoder": {},
        "specaug": {
            "apply_time_warp": True,
            "time_warp_window": 5,
            "apply_freq_mask": True,
            "freq_mask_width_range": [0, 27],
            "num_freq_mask": 2,
            "apply_time_mask": True,
            "time_mask_width_ratio_range": [0.0, 0.05],
            "num_time_mask": 5,
        },
        "output_layer": {"type": "flat"},
        "restrict_to_language_tokens": True,
    },
    "data": {
        "speed_perturb": [0.9, 1.0, 1.1],
        "speed_perturb_per": "batch",  # one factor per batch (equal lengths stay equal: less padding) or "utterance"
        "max_batch_seconds": 60.0,
        "max_batch_size": 32,
        "single_language_batches": False,  # for dense/shared-mask models; per-language masks always get them
        "num_workers": 1,
        "cmvn_max_utterances": 2000,
        "feature_cache": None,  # folder for cached filterbanks (recipes use dump/); None extracts every time
        "max_batch_padded_seconds": None,  # padded length x batch size per batch; None: max_batch_seconds
    },
    "optim": {"lr": 2.0e-3, "weight_decay": 1.0e-3, "warmup_fraction": 0.15},
    "trainer": {
        "max_steps": 1500,
        "val_check_interval": 250,
        "accelerator": "auto",
        "devices": 1,
        "strategy": "auto",
        "num_nodes": 1,
        "precision": "auto",
        "gradient_clip_val": 5.0,
        "log_every_n_steps": 25,
        "checkpoint_every_n_steps": None,  # step<N>.ckpt / last.ckpt interval; None: val_check_interval
    },
}

# Types of the keys whose default is None (the others take their default's type; an int is also a float).
NONE_DEFAULT_TYPES = {
    "data.feature_cache": Union[str, None],
    "data.max_batch_padded_seconds": Union[float, None],
    "trainer.checkpoint_every_n_steps": Union[int, None],
}
# Trainer arguments that ``asrprune train`` sets itself (a config value would clash with them).
TRAINER_SET_BY_ASRPRUNE = (
    "default_root_dir", "check_val_every_n_epoch", "logger", "callbacks", "use_distributed_sampler", "plugins",
    "enable_checkpointing",
)


def deep_merge(base: dict, override: dict) -> dict:
    """Return ``base`` updated recursively with ``override`` (neither is modified)."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


class ConfigError(ValueError):
    """A config key or value that asrprune does not accept; the message names where it came from."""


# A schema maps each key to a type hint, or to a nested schema (a dict), or to a function of the section's value
# that returns its schema (the output layer's keys depend on its type). Nullable sections may be null.
Schema = Mapping[str, Any]
Where = Callable[[tuple], str]


class Section(dict):
    """A nested schema; ``nullable``: the section may be null (ESPnet's SpecAug then is off)."""

    def __init__(self, schema: Schema, nullable: bool = False):
        super().__init__(schema)
        self.nullable = nullable


def signature_schema(function: Callable, skip: tuple = ()) -> dict:
    """Keyword arguments of ``function`` (``inspect.signature``) with their annotated types (Any where none),
    minus ``skip``."""
    try:
        hints = typing.get_type_hints(function)
    except TypeError:  # a C slot such as object.__init__ has no annotations to read
        hints = {}
    keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {
        name: hints.get(name, Any) for name, parameter in inspect.signature(function).parameters.items()
        if parameter.kind in keyword and name not in (*skip, "self")
    }


def defaults_schema(defaults: Mapping, none_types: Mapping[str, Any] = {}, prefix: str = "") -> Section:
    """The schema of a defaults dict: each key takes its default's type (floats also accept ints), nested dicts
    become sections, keys defaulting to None take their type from ``none_types`` (dotted key) or anything."""
    schema = {}
    for key, value in defaults.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            schema[key] = defaults_schema(value, none_types, f"{dotted}.")
        elif value is None:
            schema[key] = none_types.get(dotted, Any)
        elif isinstance(value, list):
            schema[key] = list
        else:
            schema[key] = type(value)
    return Section(schema)


def matches(value: Any, hint: Any) -> bool:
    """Whether a YAML value fits a type hint (Union, Optional, Literal, list/Sequence/Mapping of X, plain types).

    Written by hand because typeguard is not a dependency and ``isinstance`` does not understand hints; a hint it
    cannot judge (a class no YAML value can be) only matches instances of it.
    """
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if origin in (Union, types.UnionType):
        return any(matches(value, arg) for arg in args)
    if origin is Literal:
        return any(value == arg and type(value) is type(arg) for arg in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    sequences = (list, tuple, collections.abc.Sequence, collections.abc.Iterable)
    if hint in sequences or origin in sequences:
        items = args[0] if args and args[0] is not Ellipsis else Any
        return isinstance(value, (list, tuple)) and all(matches(item, items) for item in value)
    if hint in (dict, collections.abc.Mapping) or origin in (dict, collections.abc.Mapping):
        values = args[1] if len(args) == 2 else Any
        return isinstance(value, dict) and all(matches(item, values) for item in value.values())
    return isinstance(hint, type) and isinstance(value, hint)


def describe(hint: Any) -> str:
    """A short name of a type hint for an error message (``int``, ``one of ['flat', ...]``, ``float or None``)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        return " or ".join(dict.fromkeys(describe(arg) for arg in args))
    if origin is Literal:
        return f"one of {list(args)}"
    if hint is type(None):
        return "None"
    if isinstance(hint, type) and not args:
        return "a number" if hint is float else hint.__name__
    return str(hint).replace("typing.", "").replace("collections.abc.", "")


def nearest(key: str, known, prefix: str = "") -> str:
    """``; did you mean 'prefix.x'?`` for the closest known key (difflib), or the list of known keys."""
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.5)
    return f"; did you mean {prefix + close[0]!r}?" if close else f"; known keys: {sorted(known)}"


def check_section(values: Any, schema: Section, where: Where, path: tuple = (), context: Any = None) -> None:
    """Raise :class:`ConfigError` for the first key of ``values`` (at any depth) that ``schema`` does not know or
    whose value has the wrong type; ``where(path)`` says where the key came from (file and line, or ``--set``).
    ``context``: the config ``values`` are merged into, whose sections decide schemas that depend on other keys
    (the output layer's type); by default ``values`` itself."""
    context = values if context is None else context
    dotted = ".".join(path)
    if values is None and schema.nullable:
        return
    if not isinstance(values, dict):
        raise ConfigError(f"{where(path)}: {dotted or 'the config'} must be a mapping of keys, got {values!r}")
    for key, value in values.items():
        key_path = (*path, str(key))
        name = ".".join(key_path)
        if key not in schema:
            prefix = f"{dotted}." if dotted else ""
            raise ConfigError(f"{where(key_path)}: unknown key {name!r}{nearest(str(key), schema, prefix)}")
        expected = schema[key]
        in_context = context.get(key) if isinstance(context, dict) else value
        if isinstance(expected, types.FunctionType):
            expected = expected(in_context)
        if isinstance(expected, Section):
            check_section(value, expected, where, key_path, in_context)
        elif not matches(value, expected):
            raise ConfigError(f"{where(key_path)}: {name} = {value!r} is not {describe(expected)}")


def _output_layer_schema(value: Any) -> Section:
    """``type`` plus the keyword arguments of that output layer's constructor (``model.output_layer``)."""
    from asrprune.model.output_layers import OUTPUT_LAYERS

    kind = value.get("type", "flat") if isinstance(value, dict) else "flat"
    options = signature_schema(OUTPUT_LAYERS[kind].__init__, ("tokens", "dim")) if kind in OUTPUT_LAYERS else {}
    return Section({"type": Literal[tuple(OUTPUT_LAYERS)], **options}, nullable=True)


def training_schema() -> Section:
    """The schema of an ``asrprune train`` config (see the module docstring)."""
    import lightning as L

    from asrprune.model import conformer_ctc

    model = signature_schema(conformer_ctc.ConformerCTC.__init__, ("tokens", "language_tokens"))
    model.update(
        encoder=Section(signature_schema(conformer_ctc.ConformerEncoder.__init__, ("input_size",)), nullable=True),
        specaug=Section(signature_schema(conformer_ctc.SpecAug.__init__), nullable=True),
        output_layer=_output_layer_schema,
    )
    trainer = signature_schema(L.Trainer.__init__, TRAINER_SET_BY_ASRPRUNE)
    trainer.update(precision=Union[str, int], checkpoint_every_n_steps=Union[int, None], max_steps=int)
    schema = defaults_schema(DEFAULT_CONFIG, NONE_DEFAULT_TYPES)
    schema.update(model=Section(model), trainer=Section(trainer))
    return schema


def yaml_key_lines(text: str) -> dict[tuple, int]:
    """Line number (1-based) of every mapping key in a YAML document, by key path."""
    lines: dict[tuple, int] = {}

    def walk(node, path: tuple) -> None:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key_path = (*path, str(key_node.value))
                lines[key_path] = key_node.start_mark.line + 1
                walk(value_node, key_path)

    walk(yaml.compose(text), ())
    return lines


def read_yaml_mapping(path: str | Path) -> tuple[dict, Where]:
    """The mapping in YAML file ``path`` and a ``where(key_path)`` naming the file and the key's line; malformed
    YAML or a document that is not a mapping raises :class:`ConfigError` naming the file and line."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        loaded = yaml.safe_load(text)
        lines = yaml_key_lines(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(f"{path}{at}: malformed YAML ({problem}); fix the file") from error
    if loaded is None:
        loaded = {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: a config must be a YAML mapping of keys, got {type(loaded).__name__}")

    def where(key_path: tuple) -> str:
        line = next((lines[key_path[:n]] for n in range(len(key_path), 0, -1) if key_path[:n] in lines), None)
        return f"{path}, line {line}" if line else str(path)

    return loaded, where


def parse_override(item: str) -> dict:
    """``section.key=value`` as a nested dict ``{"section": {"key": value}}`` (value parsed as YAML)."""
    key, sep, raw = item.partition("=")
    if not sep or not key or "" in key.split("."):
        raise ConfigError(f"--set {item}: must look like section.key=value")
    try:
        value = _parse_value(raw)
    except yaml.YAMLError as error:
        raise ConfigError(f"--set {item}: the value is not valid YAML ({error.problem}); quote it") from error
    for part in reversed(key.split(".")):
        value = {part: value}
    return value


def load_checked(defaults: dict, schema: Section, path: str | Path | None, overrides: list[str] = ()) -> dict:
    """``defaults`` updated by the YAML file at ``path`` and then by ``overrides`` (``a.b=value``), each checked
    against ``schema`` first, so a bad key or value stops before any work with one line naming its origin."""
    config = copy.deepcopy(defaults)
    if path is not None:
        loaded, where = read_yaml_mapping(path)
        config = _merge_checked(config, loaded, schema, where)
    for item in overrides:
        config = _merge_checked(config, parse_override(item), schema, lambda _, item=item: f"--set {item}")
    return config


def _merge_checked(config: dict, update: dict, schema: Section, where: Where) -> dict:
    """``update`` merged into ``config`` once ``update`` is checked against ``schema`` (in the merged context)."""
    merged = deep_merge(config, update)
    check_section(update, schema, where, context=merged)
    return merged


def load_config(path: str | Path | None, overrides: list[str] = ()) -> dict:
    """Defaults, updated by the YAML file at ``path``, updated by ``overrides`` like ``trainer.max_steps=100``,
    all checked against :func:`training_schema` (see the module docstring).

    Override values are parsed as YAML (``100`` is an int, ``[0.9,1.0]`` a list, ``flat`` a string).
    """
    return load_checked(DEFAULT_CONFIG, training_schema(), path, overrides)


def check_config(config: dict, origin: str = "config") -> None:
    """Check a whole config dict built in code (e.g. by a pruning stage) as :func:`load_config` checks files."""
    check_section(config, training_schema(), lambda _: origin)


def _parse_value(raw: str):
    """YAML scalar parsing, plus numbers like ``1e-3`` that YAML 1.1 (PyYAML) leaves as strings."""
    value = yaml.safe_load(raw)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    return value
