"""The base of every pydantic model chorus reads or writes: unknown keys are errors, so a
typo in a recipe, a config or a shared JSON file is refused instead of ignored."""

from __future__ import annotations

from typing import Any, Callable, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import ChorusError

M = TypeVar("M", bound=BaseModel)


class StrictModel(BaseModel):
    """A pydantic model that refuses unknown fields."""

    model_config = ConfigDict(extra="forbid")


class FrozenModel(StrictModel):
    """A strict model whose instances cannot be changed after validation."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def problem_lines(exc: ValidationError, location: Callable[[tuple], tuple] | None = None) -> list[str]:
    """Every problem of a pydantic error, one ``field.path: message`` each (``location``
    renames a field path first, e.g. to the key names of another format)."""
    lines = []
    for error in exc.errors():
        loc = tuple(error["loc"]) if location is None else location(tuple(error["loc"]))
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"{'.'.join(str(p) for p in loc) or '(root)'}: {message}")
    return lines


def validation_problems(exc: ValidationError) -> str:
    """Every problem of a pydantic error on one line: ``field.path: message; ...``."""
    return "; ".join(problem_lines(exc))


def validated(model_cls: type[M], error: type[ChorusError], /, **values: Any) -> M:
    """``model_cls(**values)``; a pydantic error is raised as ``error("bad settings: ...")``
    with every problem on one line."""
    try:
        return model_cls(**values)
    except ValidationError as exc:
        raise error(f"bad settings: {validation_problems(exc)}") from None
