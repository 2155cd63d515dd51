"""Reading ``config.yaml`` and explaining every problem in it in one line.

A user mistake never produces a traceback: each problem names the key path, the bad value
and a hint (``did you mean ...?``). Values of keys that look secret are never echoed. A key
given twice in one mapping is an error naming both lines (plain YAML would silently keep the
last one, dropping e.g. a whole first ``risk:`` block). An empty file means all the defaults.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticUndefined

from candlewise.config.app_config import AppConfig

DEFAULT_CONFIG_PATH = Path("config.yaml")
DATABASE_URL_ENV = "CANDLEWISE_DATABASE_URL"
_SECRET_WORDS = ("key", "secret", "token", "password", "passphrase")


@dataclass(frozen=True)
class ConfigProblem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigError(Exception):
    """The configuration cannot be used; ``problems`` says why, one line each."""

    exit_code = 2

    def __init__(self, source: str, problems: list[ConfigProblem]) -> None:
        super().__init__(f"{source}: {len(problems)} problem(s)")
        self.source = source
        self.problems = problems


def looks_secret(key: str) -> bool:
    return any(word in key.lower() for word in _SECRET_WORDS)


def load_config(path: str | Path | None = None) -> AppConfig:
    """Load and validate a config file; ``None`` means ``./config.yaml`` or the defaults.

    An explicitly named file must exist. ``CANDLEWISE_DATABASE_URL`` overrides ``database.url``.
    """
    explicit = path is not None
    file = Path(path) if path is not None else DEFAULT_CONFIG_PATH
    if not file.exists():
        if explicit:
            raise ConfigError(
                str(file),
                [
                    ConfigProblem(
                        "",
                        f"config file not found: {file} (copy config.yaml from the repository "
                        "root or omit --config to use the defaults)",
                    )
                ],
            )
        raw: dict[str, Any] = {}
    else:
        raw = _read_yaml(file)
    url = os.environ.get(DATABASE_URL_ENV)
    database = raw.get("database")
    if url and (database is None or isinstance(database, dict)):
        # a malformed ``database:`` is left as it is, for validation to report it
        raw = {**raw, "database": {**(database or {}), "url": url}}
    try:
        return AppConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(str(file), explain(exc, raw)) from None


class _DuplicateKeys(Exception):
    def __init__(self, problems: list[ConfigProblem]) -> None:
        super().__init__(f"{len(problems)} duplicate key(s)")
        self.problems = problems


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping, at any depth.

    The composed node tree is checked before anything is constructed, so every duplicate is
    reported with its key path and the line of each occurrence.
    """

    def get_single_data(self) -> Any:
        node = self.get_single_node()
        if node is None:
            return None
        problems: list[ConfigProblem] = []
        _find_duplicates(node, (), problems, set())
        if problems:
            raise _DuplicateKeys(problems)
        return self.construct_document(node)


def _find_duplicates(
    node: yaml.Node, loc: tuple[Any, ...], problems: list[ConfigProblem], seen: set[int]
) -> None:
    if id(node) in seen:  # an alias of a node already checked (or a recursive one)
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        lines: dict[tuple[str, str], list[int]] = {}
        sections: set[tuple[str, str]] = set()
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                key = (key_node.tag, key_node.value)
                lines.setdefault(key, []).append(key_node.start_mark.line + 1)
                if isinstance(value_node, yaml.MappingNode):
                    sections.add(key)
                _find_duplicates(value_node, (*loc, key_node.value), problems, seen)
            else:
                _find_duplicates(value_node, loc, problems, seen)
        for key, where in lines.items():
            if len(where) > 1:
                name = key[1]
                listed = ", ".join(map(str, where[:-1])) + f" and {where[-1]}"
                fix = "merge them into one section" if key in sections else "delete all but one"
                problems.append(
                    ConfigProblem(
                        _dotted((*loc, name)),
                        f"duplicate key {name!r} at lines {listed}; YAML would silently keep "
                        f"only the last one: {fix}",
                    )
                )
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _find_duplicates(item, (*loc, index), problems, seen)


def _read_yaml(file: Path) -> dict[str, Any]:
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(file), [ConfigProblem("", f"cannot read {file}: {exc}")]) from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except _DuplicateKeys as exc:
        raise ConfigError(str(file), exc.problems) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        detail = f"{problem} ({context})" if context else problem
        raise ConfigError(
            str(file),
            [
                ConfigProblem(
                    "",
                    f"YAML syntax error at {where}{detail}; check indentation (spaces, not tabs) "
                    "and that every 'key: value' has a space after the colon",
                )
            ],
        ) from None
    if data is None:  # an empty file, or only comments: all the defaults
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            str(file),
            [ConfigProblem("", "the file must be a mapping of keys (live_trading:, risk:, ...)")],
        )
    return data


def explain(exc: ValidationError, raw: dict[str, Any]) -> list[ConfigProblem]:
    """One problem per pydantic error, phrased for someone editing the YAML file."""
    problems: list[ConfigProblem] = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        path = _dotted(loc)
        kind = err["type"]
        value = err.get("input")
        key = str(loc[-1]) if loc else ""
        msg = err["msg"].removeprefix("Value error, ")
        if kind == "extra_forbidden":
            msg = _unknown_key(loc)
        elif kind == "missing":
            msg = "required key is missing"
        elif kind in {"model_type", "dict_type"} and not isinstance(value, dict | list):
            msg = f"expected a section (indented keys below it), got {_show(value)}"
        elif isinstance(value, dict | list | tuple):
            pass  # a section-level rule (weights, band): the message names the values
        elif value is None and kind.endswith("_type"):
            msg = "no value given (empty or null); " + _default_hint(loc)
        else:
            if kind.endswith(("_type", "_parsing")):
                msg = f"wrong type: {msg[0].lower()}{msg[1:]}{_quote_hint(kind, value)}"
            shown = "<hidden>" if looks_secret(key) else _show(value)
            msg = f"{shown} — {msg[0].lower()}{msg[1:]}"
        problems.append(ConfigProblem(path, msg))
    return problems


def _default_hint(loc: tuple[Any, ...]) -> str:
    model = _model_at(AppConfig, loc[:-1])
    field = model.model_fields.get(str(loc[-1])) if model and loc else None
    default = field.default if field is not None else PydanticUndefined
    if default is PydanticUndefined or default is None:
        return "write a value"
    if isinstance(default, tuple) and all(isinstance(d, str) for d in default):
        default = list(default)
    elif not isinstance(default, str | int | float | bool):
        return "write a value, or delete the key to use the default"
    return f"write a value, or delete the key to use the default ({_show(default)})"


def _quote_hint(kind: str, value: Any) -> str:
    """For ``"50"`` or ``"yes"``: YAML reads quoted values as text, numbers must be bare."""
    if not isinstance(value, str):
        return ""
    if kind == "bool_type" and value.strip().lower() in {"yes", "no", "true", "false", "on", "off"}:
        return "; write true or false, without quotes"
    if kind in {"int_type", "float_type"}:
        try:
            float(value)
        except ValueError:
            return ""
        return f"; remove the quotes: write {value.strip()}, not {value!r}"
    return ""


def _dotted(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts[-1:] = [f"{parts[-1]}[{item}]" if parts else f"[{item}]"]
        else:
            parts.append(str(item))
    return ".".join(parts)


def _unknown_key(loc: tuple[Any, ...]) -> str:
    key = str(loc[-1])
    model = _model_at(AppConfig, loc[:-1])
    known = list(model.model_fields) if model else []
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    text = f"unknown key {key!r}"
    if close:
        text += f"; did you mean {close[0]!r}?"
    elif known:
        text += f"; valid keys here: {', '.join(known)}"
    if looks_secret(key):
        text += "; secrets belong in .env (see .env.example), never in config.yaml"
    return text


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model describing the mapping at ``loc`` (list indices skipped)."""
    current: Any = model
    for item in loc:
        if isinstance(item, int):
            continue
        field = current.model_fields.get(str(item)) if _is_model(current) else None
        if field is None:
            return None
        current = _inner_model(field.annotation)
    return current if _is_model(current) else None


def _is_model(obj: Any) -> bool:
    return isinstance(obj, type) and issubclass(obj, BaseModel)


def _inner_model(annotation: Any) -> Any:
    if _is_model(annotation):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
