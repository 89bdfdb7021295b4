"""chorus.data.windows: sliding windows and BEANS-style window labels."""

from __future__ import annotations

import pytest

from chorus.data.annotations import Event
from chorus.data.windows import Window, label_windows, sliding_windows


def spans(windows):
    return [(w.start, w.end) for w in windows]


def test_full_windows_then_one_padded_window_for_the_tail():
    assert spans(sliding_windows(10.5, 3, 1)) == [(i, i + 3) for i in range(8)] + [(8, 11)]
    assert spans(sliding_windows(10.5, 3, 1, partial="drop")) == [(i, i + 3) for i in range(8)]


def test_exact_fit_adds_no_padded_window_despite_float_steps():
    assert spans(sliding_windows(3.0, 1.0, 0.5)) == [(i * 0.5, i * 0.5 + 1.0) for i in range(5)]
    assert len(sliding_windows(0.3, 0.1, 0.1)) == 3


def test_short_recording_gets_one_padded_window_or_none():
    assert spans(sliding_windows(1.2, 5, 2.5)) == [(0, 5)]
    assert sliding_windows(1.2, 5, 2.5, partial="drop") == []
    assert sliding_windows(0.0, 5, 2.5) == []


def test_hop_longer_than_window_leaves_gaps():
    assert spans(sliding_windows(10, 2, 4)) == [(0, 2), (4, 6), (8, 10)]


@pytest.mark.parametrize("args, kwargs", [((10, 0, 1), {}), ((10, 1, -1), {}), ((-1, 1, 1), {}),
                                          ((10, 1, 1), {"partial": "wrap"})])
def test_bad_arguments(args, kwargs):
    with pytest.raises(ValueError):
        sliding_windows(*args, **kwargs)


def test_overlap_is_relative_to_the_shorter_of_window_and_event():
    windows = [Window(0, 2), Window(2, 4), Window(4, 6)]
    events = [
        Event(1.5, 2.1, "chirp"),   # 0.5 of 0.6 s in window 0 (83 %), 0.1 of 0.6 s in window 1 (17 %)
        Event(3.0, 10.0, "drone"),  # covers 1 s of window 1 (50 %) and all of window 2
        Event(0.1, 0.5, "tick"),    # short call inside window 0 (100 %)
    ]
    assert label_windows(windows, events) == [("chirp", "tick"), ("drone",), ("drone",)]
    assert label_windows(windows, events, min_overlap=0.1) == [("chirp", "tick"), ("chirp", "drone"), ("drone",)]


def test_threshold_is_strict_and_point_events_mark_their_window():
    windows = [Window(0, 1), Window(1, 2)]
    quarter_in_window_0 = Event(0.75, 1.75, "x")  # 0.25 s of a 1 s event, exact in binary
    assert label_windows(windows, [quarter_in_window_0], min_overlap=0.25) == [(), ("x",)]
    assert label_windows(windows, [quarter_in_window_0], min_overlap=0.24) == [("x",), ("x",)]
    assert label_windows(windows, [Event(1.0, 1.0, "click")]) == [(), ("click",)]


def test_no_events_and_many_windows():
    windows = sliding_windows(7200, 1, 1)
    assert label_windows(windows, []) == [()] * 7200
    events = [Event(float(t), t + 0.5, "call") for t in range(0, 7200, 10)]
    labels = label_windows(windows, events)
    assert sum(1 for lab in labels if lab) == 720 and labels[10] == ("call",) and labels[11] == ()
