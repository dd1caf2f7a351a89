"""The shared nouns refuse values that could not be stored or compared."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError as PydanticValidationError

from hainet.types import GenerationParams, ModelSpec, RunConfig


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, -0.5])
def test_generation_params_refuse_a_non_finite_or_negative_temperature(value: float) -> None:
    with pytest.raises(ValueError, match="temperature must be a finite number >= 0"):
        GenerationParams(temperature=value)
    with pytest.raises(ValueError, match="temperature"):
        GenerationParams().replace(temperature=value)


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_run_config_refuses_a_non_finite_temperature(value: float) -> None:
    with pytest.raises(PydanticValidationError, match="temperature"):
        RunConfig(model=ModelSpec(name="m"), temperature=value)


def test_finite_values_still_pass() -> None:
    assert GenerationParams(temperature=0.7, top_p=0.9).temperature == 0.7
    assert RunConfig(model=ModelSpec(name="m"), temperature=1.5).params().temperature == 1.5
