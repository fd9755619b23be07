"""Speed records: validation, derived capture rate, and an exact JSON round trip."""

from __future__ import annotations

import json
from fractions import Fraction

import pytest

from engine.errors import ChronoscopeError, UnsupportedOptionError
from engine.speed.result import Evidence, SpeedClass, SpeedEstimate, SpeedSegment, WindowEstimate


def _slowmo() -> SpeedEstimate:
    return SpeedEstimate(
        speed=Fraction(1, 8),
        playback_rate=Fraction(30000, 1001),
        capture_rate=None,
        confidence=0.9,
        speed_class=SpeedClass.SLOWMO,
        speed_log2_sigma=0.25,
        evidence=[Evidence("metadata", "capture rate tag", 240.0, 0.9)],
    )


def test_capture_rate_is_derived_exactly_from_speed():
    estimate = _slowmo()
    assert estimate.capture_rate == Fraction(240000, 1001)
    assert estimate.slowdown_factor == 8


def test_measured_float_speed_becomes_a_small_fraction():
    estimate = SpeedEstimate(0.3333333, Fraction(30), None, 0.5, "synthetic_slowmo")
    assert estimate.speed == Fraction(1, 3)
    assert estimate.speed_class is SpeedClass.SYNTHETIC_SLOWMO
    assert estimate.capture_rate == 90


def test_interval_is_multiplicative():
    low, high = _slowmo().speed_interval(sigmas=2.0)
    assert low == pytest.approx(0.125 / 2**0.5)
    assert high == pytest.approx(0.125 * 2**0.5)


def test_json_round_trip_is_exact():
    window = WindowEstimate(32, 64, _slowmo())
    text = json.dumps(window.to_dict())
    again = WindowEstimate.from_dict(json.loads(text))
    assert again.estimate.speed == Fraction(1, 8)
    assert again.estimate.playback_rate == Fraction(30000, 1001)
    assert again.estimate.evidence == window.estimate.evidence
    assert again.to_dict() == window.to_dict()
    segment = SpeedSegment(0, 96, _slowmo(), window_count=3)
    assert SpeedSegment.from_dict(json.loads(json.dumps(segment.to_dict()))).to_dict() == segment.to_dict()


def test_still_has_no_speed_and_says_so():
    still = SpeedEstimate(None, Fraction(25), None, 0.8, SpeedClass.STILL)
    assert still.speed_interval() is None
    assert still.to_dict()["speed"] is None
    with pytest.raises(UnsupportedOptionError, match="still"):
        SpeedEstimate(Fraction(1), Fraction(25), None, 0.8, SpeedClass.STILL)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"confidence": 1.5}, "confidence"),
        ({"speed": Fraction(0)}, "not positive"),
        ({"speed": None}, "needs a speed"),
        ({"playback_rate": Fraction(0)}, "playback rate"),
        ({"speed_class": "slow"}, "valid: realtime, slowmo"),
        ({"speed_log2_sigma": -1.0}, "speed_log2_sigma"),
    ],
)
def test_invalid_values_are_refused_with_a_named_error(kwargs, message):
    values = {
        "speed": Fraction(1),
        "playback_rate": Fraction(30),
        "capture_rate": None,
        "confidence": 0.5,
        "speed_class": "realtime",
    }
    values.update(kwargs)
    with pytest.raises(ChronoscopeError, match=message):
        SpeedEstimate(**values)


def test_window_range_must_not_be_empty():
    with pytest.raises(UnsupportedOptionError, match="empty"):
        WindowEstimate(10, 10, _slowmo())
