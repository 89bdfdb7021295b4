"""The base of every pydantic model chorus reads or writes: unknown keys are errors, so a
typo in a recipe, a config or a shared JSON file is refused instead of ignored."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """A pydantic model that refuses unknown fields."""

    model_config = ConfigDict(extra="forbid")


class FrozenModel(StrictModel):
    """A strict model whose instances cannot be changed after validation."""

    model_config = ConfigDict(extra="forbid", frozen=True)
