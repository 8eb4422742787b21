"""Fixtures of the feature tests: the measures builders of :mod:`builders`."""

from __future__ import annotations

import pytest

from .builders import build_measures, motor_rows, sensory_rows


@pytest.fixture
def measures_of():
    return build_measures


@pytest.fixture
def motor():
    return motor_rows


@pytest.fixture
def sensory():
    return sensory_rows
