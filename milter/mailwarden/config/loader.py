"""Turn a TOML document into frozen dataclasses, collecting every error with its key path.

A section is a dataclass whose fields all have defaults; the field's type says what the TOML
value must be. A section may define `check(self) -> list[tuple[str, str]]` returning
(key, reason) pairs for rules no type can express. Unknown keys are errors: a typo must stop the
service, not silently fall back to a default.

A field typed `FilePath` (or a tuple of them) names a file or directory: a relative value is
resolved here against the directory of the config file, the one rule for every path in it.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

T = TypeVar("T")

_RELATIVE_TO_CONFIG = "relative to the config file"
FilePath = Annotated[str, _RELATIVE_TO_CONFIG]
"""A file or directory; relative to the config file's directory."""


def build(cls: type[T], data: Any, path: str, problems: list[str], base_dir: Path | None = None) -> T:
    """An instance of dataclass `cls` from the mapping `data`; problems are appended to `problems`.

    `base_dir`: the config file's directory, against which relative `FilePath` values resolve."""
    if not isinstance(data, dict):
        problems.append(f"{path or '(top)'}: expected a table, got {_tname(data)}")
        return cls()
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for key, raw in data.items():
        where = f"{path}.{key}" if path else key
        if key not in fields:
            problems.append(f"{where}: unknown key (known: {', '.join(sorted(fields))})")
            continue
        ok, value = _convert(hints[key], raw, where, problems, base_dir)
        if ok:
            values[key] = value
    try:
        obj = cls(**values)
    except (TypeError, ValueError) as exc:
        problems.append(f"{path or '(top)'}: {exc}")
        return cls()
    check = getattr(obj, "check", None)
    if callable(check):
        for key, reason in check():
            problems.append(f"{path}.{key}: {reason}" if path else f"{key}: {reason}")
    return obj


def _convert(
    tp: Any, raw: Any, where: str, problems: list[str], base_dir: Path | None = None
) -> tuple[bool, Any]:
    origin = get_origin(tp)
    if origin is Annotated:
        inner, *marks = get_args(tp)
        ok, value = _convert(inner, raw, where, problems, base_dir)
        if ok and _RELATIVE_TO_CONFIG in marks and base_dir is not None and value:
            value = str(base_dir / value)  # an absolute value stays as it is
        return ok, value
    if dataclasses.is_dataclass(tp):
        return True, build(tp, raw, where, problems, base_dir)  # type: ignore[arg-type]
    if origin is Literal:
        allowed = get_args(tp)
        if raw in allowed:
            return True, raw
        problems.append(f"{where}: must be one of {', '.join(map(repr, allowed))}, got {raw!r}")
        return False, None
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if raw is None and len(args) < len(get_args(tp)):
            return True, None
        sub: list[str] = []
        for arg in args:
            sub = []
            ok, value = _convert(arg, raw, where, sub, base_dir)
            if ok and not sub:
                return True, value
        problems.extend(sub or [f"{where}: invalid value {raw!r}"])
        return False, None
    if origin is tuple:
        if not isinstance(raw, list):
            problems.append(f"{where}: expected an array, got {_tname(raw)}")
            return False, None
        item_tp = get_args(tp)[0]
        items = []
        good = True
        for i, item in enumerate(raw):
            ok, value = _convert(item_tp, item, f"{where}[{i}]", problems, base_dir)
            good = good and ok
            items.append(value)
        return good, tuple(items)
    if origin is dict:
        _key_tp, val_tp = get_args(tp)
        if not isinstance(raw, dict):
            problems.append(f"{where}: expected a table, got {_tname(raw)}")
            return False, None
        out = {}
        good = True
        for k, v in raw.items():
            ok, value = _convert(val_tp, v, f"{where}.{k}", problems, base_dir)
            good = good and ok
            out[k] = value
        return good, types.MappingProxyType(out)
    if tp is bool:
        if isinstance(raw, bool):
            return True, raw
    elif tp is int:
        if isinstance(raw, int) and not isinstance(raw, bool):
            return True, raw
    elif tp is float:
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            return True, float(raw)
    elif tp is str:
        if isinstance(raw, str):
            return True, raw
    else:
        raise TypeError(f"config type {tp!r} not supported")
    problems.append(f"{where}: expected {tp.__name__}, got {_tname(raw)} {raw!r}")
    return False, None


def _tname(value: Any) -> str:
    return {dict: "table", list: "array", str: "string", bool: "boolean", int: "integer",
            float: "float"}.get(type(value), type(value).__name__)
