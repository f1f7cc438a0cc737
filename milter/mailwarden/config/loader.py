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
    fields = {toml_key(f): f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for key, raw in data.items():
        where = f"{path}.{key}" if path else key
        if key not in fields:
            problems.append(f"{where}: unknown key (known: {', '.join(sorted(fields))})")
            continue
        name = fields[key].name
        ok, value = _convert(hints[name], raw, where, problems, base_dir)
        if ok:
            values[name] = value
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


def toml_key(f: dataclasses.Field[Any]) -> str:
    """The key a field is written under: its name, unless that is a Python keyword (`from`),
    given as `field(metadata={"key": "from"})`."""
    return str(f.metadata.get("key", f.name))


def _convert(
    tp: Any, raw: Any, where: str, problems: list[str], base_dir: Path | None = None
) -> tuple[bool, Any]:
    """(ok, value) for the TOML value `raw` of a field typed `tp`; problems are appended."""
    origin = get_origin(tp)
    if origin is Annotated:
        return _convert_annotated(tp, raw, where, problems, base_dir)
    if dataclasses.is_dataclass(tp):
        return True, build(tp, raw, where, problems, base_dir)  # type: ignore[arg-type]
    if origin is Literal:
        allowed = get_args(tp)
        if raw in allowed:
            return True, raw
        problems.append(f"{where}: must be one of {', '.join(map(repr, allowed))}, got {raw!r}")
        return False, None
    if origin in (Union, types.UnionType):
        return _convert_union(tp, raw, where, problems, base_dir)
    if origin is tuple:
        return _convert_array(get_args(tp)[0], raw, where, problems, base_dir)
    if origin is dict:
        return _convert_table(get_args(tp)[1], raw, where, problems, base_dir)
    return _convert_scalar(tp, raw, where, problems)


def _convert_annotated(
    tp: Any, raw: Any, where: str, problems: list[str], base_dir: Path | None
) -> tuple[bool, Any]:
    inner, *marks = get_args(tp)
    ok, value = _convert(inner, raw, where, problems, base_dir)
    if ok and _RELATIVE_TO_CONFIG in marks and base_dir is not None and value:
        value = str(base_dir / value)  # an absolute value stays as it is
    return ok, value


def _convert_union(
    tp: Any, raw: Any, where: str, problems: list[str], base_dir: Path | None
) -> tuple[bool, Any]:
    """The first member type that takes `raw` without a problem; None for an optional's None."""
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


def _convert_array(
    item_tp: Any, raw: Any, where: str, problems: list[str], base_dir: Path | None
) -> tuple[bool, Any]:
    if not isinstance(raw, list):
        problems.append(f"{where}: expected an array, got {_tname(raw)}")
        return False, None
    converted = [_convert(item_tp, item, f"{where}[{i}]", problems, base_dir) for i, item in enumerate(raw)]
    return all(ok for ok, _ in converted), tuple(value for _, value in converted)


def _convert_table(
    val_tp: Any, raw: Any, where: str, problems: list[str], base_dir: Path | None
) -> tuple[bool, Any]:
    if not isinstance(raw, dict):
        problems.append(f"{where}: expected a table, got {_tname(raw)}")
        return False, None
    converted = {k: _convert(val_tp, v, f"{where}.{k}", problems, base_dir) for k, v in raw.items()}
    good = all(ok for ok, _ in converted.values())
    return good, types.MappingProxyType({k: value for k, (_, value) in converted.items()})


_SCALARS: dict[Any, Any] = {
    bool: lambda raw: raw if isinstance(raw, bool) else None,
    int: lambda raw: raw if isinstance(raw, int) and not isinstance(raw, bool) else None,
    float: lambda raw: float(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) else None,
    str: lambda raw: raw if isinstance(raw, str) else None,
}


def _convert_scalar(tp: Any, raw: Any, where: str, problems: list[str]) -> tuple[bool, Any]:
    if tp not in _SCALARS:
        raise TypeError(f"config type {tp!r} not supported")
    value = _SCALARS[tp](raw)
    if value is not None:
        return True, value
    problems.append(f"{where}: expected {tp.__name__}, got {_tname(raw)} {raw!r}")
    return False, None


def _tname(value: Any) -> str:
    return {dict: "table", list: "array", str: "string", bool: "boolean", int: "integer",
            float: "float"}.get(type(value), type(value).__name__)
