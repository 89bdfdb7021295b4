"""chorus.data.annotations: Raven selection tables and Audacity label tracks."""

from __future__ import annotations

from pathlib import Path

import pytest

from chorus.data.annotations import RAVEN_WRITE_COLUMNS, Event, read_audacity, read_raven, write_audacity, write_raven
from chorus.data.errors import AnnotationError

RAVEN_HEADER = "Selection\tView\tChannel\tBegin Time (s)\tEnd Time (s)\tLow Freq (Hz)\tHigh Freq (Hz)"


def test_reads_a_raven_table_with_one_event_per_selection(tmp_path):
    path = tmp_path / "sel.txt"
    path.write_text(
        f"{RAVEN_HEADER}\tBegin Path\tSpecies\n"
        "1\tWaveform 1\t1\t1.5\t2.25\t0\t0\t/rec/a.wav\tWREN\n"
        "1\tSpectrogram 1\t1\t1.5\t2.25\t2000\t8000\t/rec/a.wav\tWREN\n"
        "2\tSpectrogram 1\t1\t3\t3.5\t500\t1500.5\t/rec/a.wav\towl \"tawny\"\n"
        "\n", encoding="utf-8")
    events = read_raven(path)
    assert events == [
        Event(1.5, 2.25, "WREN", 2000.0, 8000.0, None, Path("/rec/a.wav")),
        Event(3.0, 3.5, 'owl "tawny"', 500.0, 1500.5, None, Path("/rec/a.wav")),
    ]


def test_label_column_can_be_named_and_scores_and_begin_file_are_read(tmp_path):
    path = tmp_path / "sel.txt"
    path.write_text("Begin Time (s)\tEnd Time (s)\tCall Type\tNotes\tConfidence\tBegin File\n"
                    "0.5\t1\ttrill\tloud\t0.875\tx.wav\n")
    assert read_raven(path, label_column="Notes") == [Event(0.5, 1.0, "loud", score=0.875, path=Path("x.wav"))]
    assert read_raven(path)[0].label == "trill"


def test_malformed_raven_table_names_the_file_and_every_bad_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text(f"{RAVEN_HEADER}\tlabel\n"
                    "1\tSpectrogram 1\t1\tabc\t2\t0\t1000\twren\n"
                    "2\tSpectrogram 1\t1\t1\t2\t0\t1000\twren\n"
                    "3\tSpectrogram 1\t1\t5\t4\t0\t1000\twren\n"
                    "4\tSpectrogram 1\t1\t1\t2\t900\t100\towl\n")
    with pytest.raises(AnnotationError) as caught:
        read_raven(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: 3 problems")
    assert "line 2: Begin Time (s) 'abc' is not a number" in message
    assert "line 4: event times must satisfy" in message and "line 5: low_freq 900.0 Hz is above" in message


def test_a_table_without_time_or_label_columns_is_refused(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("Selection\tSpecies\n1\twren\n")
    with pytest.raises(AnnotationError, match=r"x\.txt: not a Raven selection table: missing Begin Time"):
        read_raven(path)
    path.write_text("Begin Time (s)\tEnd Time (s)\tNotes\n1\t2\tx\n")
    with pytest.raises(AnnotationError, match="an annotation column"):
        read_raven(path)
    with pytest.raises(AnnotationError, match="file not found"):
        read_raven(tmp_path / "none.txt")


def test_raven_write_format_is_exact_and_reads_back(tmp_path):
    events = [Event(0.1, 1.0 / 3, "wren", 2000, 8000, 0.9, Path("/rec/a.wav")), Event(2, 2.5, "owl")]
    write_raven(tmp_path / "out.txt", events)
    lines = (tmp_path / "out.txt").read_text().splitlines()
    assert lines == [
        "\t".join(RAVEN_WRITE_COLUMNS),
        "1\tSpectrogram 1\t1\t0.100000\t0.333333\t2000.000\t8000.000\twren\t0.900000\t/rec/a.wav",
        "2\tSpectrogram 1\t1\t2.000000\t2.500000\t\t\towl\t\t",
    ]
    back = read_raven(tmp_path / "out.txt")
    assert back[1] == events[1] and back[0].end == pytest.approx(1 / 3, abs=1e-6) and back[0].score == 0.9
    write_raven(tmp_path / "boxed.txt", [Event(2, 2.5, "owl")], sample_rate=48000)
    assert read_raven(tmp_path / "boxed.txt")[0].high_freq == 24000.0


def test_raven_write_refuses_labels_that_break_the_table(tmp_path):
    with pytest.raises(ValueError, match="tab or line break"):
        write_raven(tmp_path / "out.txt", [Event(0, 1, "a\tb")])
    assert not (tmp_path / "out.txt").exists()


def test_audacity_round_trip_with_frequency_lines(tmp_path):
    events = [Event(1.0, 1.0, "point"), Event(2.0, 2.5, "band", 100.0, 4000.0), Event(3.0, 3.5, "high only", None, 900.0)]
    write_audacity(tmp_path / "labels.txt", events)
    assert (tmp_path / "labels.txt").read_text().splitlines()[:3] == [
        "1.000000\t1.000000\tpoint", "2.000000\t2.500000\tband", "\\\t100.000000\t4000.000000"]
    assert read_audacity(tmp_path / "labels.txt") == events


def test_audacity_problems_name_the_lines(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("1\t2\tok\nx\t2\tbad\n\\\t5\n3\t1\tbackwards\n")
    with pytest.raises(AnnotationError) as caught:
        read_audacity(path)
    message = str(caught.value)
    assert "line 2: begin 'x' is not a number" in message and "line 3: frequency line" in message
    assert "line 4: event times" in message


def test_event_checks_its_values():
    with pytest.raises(ValueError):
        Event(-1, 2, "x")
    with pytest.raises(ValueError):
        Event(float("nan"), 2, "x")
    assert Event(1, 3.5, "x").duration == 2.5
