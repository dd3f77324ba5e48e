"""Severity, priority and the condition index (pure rules)."""
from __future__ import annotations

import pytest

from agents.roads.domain.ranking import (
    box_area_share,
    condition_index,
    crack_length_m,
    priority_assess,
    severity_assess,
    size_estimate_m,
)


def test_bigger_and_surer_damage_is_more_severe():
    small = severity_assess(class_name="pothole", area_share=0.002, confidence=0.6)
    big = severity_assess(class_name="pothole", area_share=0.08, confidence=0.6)
    sure = severity_assess(class_name="pothole", area_share=0.08, confidence=0.95)
    assert small.score < big.score < sure.score
    assert small.level < sure.level and sure.level == 4


def test_a_pothole_outranks_a_crack_of_the_same_size():
    hole = severity_assess(class_name="pothole", area_share=0.03, confidence=0.8)
    crack = severity_assess(class_name="crack", area_share=0.03, confidence=0.8, crack_length_m=2.0)
    assert hole.score > crack.score


def test_a_crack_weighs_its_length_and_its_area():
    short = severity_assess(class_name="crack", area_share=0.01, confidence=0.8, crack_length_m=0.5)
    long = severity_assess(class_name="crack", area_share=0.01, confidence=0.8, crack_length_m=5.0)
    wide = severity_assess(class_name="crack", area_share=0.08, confidence=0.8, crack_length_m=0.5)
    assert short.score < long.score and short.score < wide.score
    # length counts for more than area: a 5 m crack in a thin box outranks a patch of short ones
    assert long.score > wide.score
    longer = severity_assess(class_name="crack", area_share=0.01, confidence=0.8, crack_length_m=50.0)
    assert longer == long  # beyond LONG_CRACK_M a crack is simply long
    # the worst crack is severe, never critical: it is sealed, not an emergency
    worst = severity_assess(class_name="crack", area_share=1.0, confidence=1.0, crack_length_m=9.0)
    assert worst.level == 3 and worst.score == pytest.approx(0.6)
    assert crack_length_m(width_m=3.0, length_m=4.0) == 5.0 and crack_length_m(width_m=None, length_m=None) == 0


def test_main_roads_and_repeat_sightings_raise_priority():
    res = priority_assess(severity=0.6, road_class="residential")
    main = priority_assess(severity=0.6, road_class="primary")
    seen = priority_assess(severity=0.6, road_class="residential", sightings=4)
    assert res.score < main.score and res.score < seen.score
    assert priority_assess(severity=1.0, road_class="motorway").level == 4
    assert priority_assess(severity=0.1, road_class="service").level == 1


def test_condition_index_falls_with_density():
    assert condition_index(severities=[], length_m=120) == 100
    one = condition_index(severities=[1.0], length_m=100)
    two = condition_index(severities=[1.0, 1.0], length_m=100)
    long_road = condition_index(severities=[1.0], length_m=400)
    assert two < one < long_road < 100
    assert one == pytest.approx(51.3, abs=0.1)
    # short junction links count as 50 m
    assert condition_index(severities=[1.0], length_m=5) == condition_index(severities=[1.0], length_m=50)


def test_box_share_and_size_estimate():
    assert box_area_share(box=[0, 0, 64, 48], width=640, height=480) == pytest.approx(0.01)
    assert box_area_share(box=[10, 10, 5, 5], width=640, height=480) == 0.0
    w, length = size_estimate_m(box=[0, 0, 160, 80], width=640, height=480, ground_width_m=4.0)
    assert (w, length) == (1.0, 0.5)
