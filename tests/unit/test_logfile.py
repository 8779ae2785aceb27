"""The json-file log: the shim's writer (runtime/shimio.py) and the daemon's reader
(runtime/logfile.py), on real files; the log options and --since/--until parsing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from boxnet.errors import InvalidArgument
from boxnet.parsing import logopts
from boxnet.parsing.timestamps import api_timestamp
from boxnet.runtime import logfile
from boxnet.runtime.shimio import MAX_RECORD, LogWriter, Output, rfc3339


def records(path: Path, **query: object) -> list[tuple[str, bytes]]:
    return [(r.stream, r.data) for r in logfile.read(path, logfile.Query(**query))]  # type: ignore[arg-type]


def test_lines_become_records_in_docker_json_file_shape(tmp_path: Path) -> None:
    log = tmp_path / "container.log"
    writer = LogWriter(str(log))
    writer.write("stdout", b"hel")
    writer.write("stderr", b"oops\n")
    writer.write("stdout", b"lo\nwor")  # the line ends in a later chunk: one record
    writer.close()  # the unfinished "wor" is logged at the end
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert [(x["stream"], x["log"]) for x in lines] == [
        ("stderr", "oops\n"),
        ("stdout", "hello\n"),
        ("stdout", "wor"),
    ]
    assert all(len(x["time"]) == 30 and x["time"].endswith("Z") for x in lines)
    assert records(log) == [("stderr", b"oops\n"), ("stdout", b"hello\n"), ("stdout", b"wor")]


def test_bytes_that_are_not_utf8_come_back_exactly(tmp_path: Path) -> None:
    log = tmp_path / "container.log"
    raw = b"\xff\xfe caf\xc3\xa9 \xe2\x82\n"
    writer = LogWriter(str(log))
    writer.write("stdout", raw)
    writer.close()
    assert records(log) == [("stdout", raw)]


def test_a_long_line_is_cut_into_records(tmp_path: Path) -> None:
    log = tmp_path / "container.log"
    writer = LogWriter(str(log))
    writer.write("stdout", b"x" * (MAX_RECORD + 10))
    writer.close()
    assert [len(data) for _, data in records(log)] == [MAX_RECORD, 10]


def test_rotation_keeps_max_files_and_the_reader_spans_them(tmp_path: Path) -> None:
    log = tmp_path / "container.log"
    writer = LogWriter(str(log), max_size=1000, max_files=3)
    for i in range(100):
        writer.write("stdout", f"line{i}\n".encode())
    writer.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["container.log", "container.log.1", "container.log.2"]
    assert all(p.stat().st_size <= 1000 for p in tmp_path.iterdir())
    shown = [data.decode().strip() for _, data in records(log)]
    first = int(shown[0][4:])
    assert first > 0 and shown == [f"line{i}" for i in range(first, 100)]
    assert [d for _, d in records(log, tail=2)] == [b"line98\n", b"line99\n"]


def test_max_file_one_starts_the_file_over(tmp_path: Path) -> None:
    log = tmp_path / "container.log"
    writer = LogWriter(str(log), max_size=200, max_files=1)
    for i in range(50):
        writer.write("stdout", f"line{i}\n".encode())
    writer.close()
    assert [p.name for p in tmp_path.iterdir()] == ["container.log"]
    assert records(log)[-1] == ("stdout", b"line49\n")


def test_a_restart_appends(tmp_path: Path) -> None:
    log = tmp_path / "container.log"
    for run in (1, 2):
        writer = LogWriter(str(log))
        writer.write("stdout", f"run{run}\n".encode())
        writer.close()
    assert records(log) == [("stdout", b"run1\n"), ("stdout", b"run2\n")]


def test_since_until_and_a_damaged_line(tmp_path: Path) -> None:
    log = tmp_path / "container.log"
    stamps = [rfc3339(t * 10**9) for t in (100, 200, 300)]
    lines = [
        json.dumps({"log": f"{i}\n", "stream": "stdout", "time": t}) for i, t in enumerate(stamps)
    ]
    log.write_text(lines[0] + '\n{"log": "broken\n' + lines[1] + "\n" + lines[2] + "\n")
    assert [d for _, d in records(log, since_ns=200 * 10**9)] == [b"1\n", b"2\n"]
    assert [d for _, d in records(log, until_ns=200 * 10**9)] == [b"0\n", b"1\n"]
    assert logfile.rfc3339_ns(stamps[1]) == 200 * 10**9


def test_follow_sees_new_records_across_a_rotation(tmp_path: Path) -> None:
    log = tmp_path / "container.log"
    writer = LogWriter(str(log), max_size=300, max_files=2)
    writer.write("stdout", b"first\n")
    running = True
    follower = logfile.read(log, logfile.Query(follow=True), lambda: running)
    assert next(follower).data == b"first\n"
    for i in range(5):  # about 75 bytes a record: one rotation on the way
        writer.write("stdout", f"more{i}\n".encode())
    assert log.with_name("container.log.1").exists()
    assert [next(follower).data for _ in range(5)] == [f"more{i}\n".encode() for i in range(5)]
    writer.close()
    running = False
    assert list(follower) == []  # the container stopped: the follow ends


def test_log_options() -> None:
    assert logopts.from_log_config(None) == (10 * 1024 * 1024, 3)
    config = {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "5"}}
    assert logopts.from_log_config(config) == (10 * 1024 * 1024, 5)
    assert logopts.parse_size("512k") == 512 * 1024 and logopts.parse_size("2MB") == 2 * 1024**2
    assert logopts.from_log_config({"Config": {"max-size": "-1"}}) == (0, 1)
    for bad in (
        {"Type": "syslog"},
        {"Config": {"max-size": "big"}},
        {"Config": {"max-file": "0"}},
        {"Config": {"tag": "x"}},
    ):
        with pytest.raises(InvalidArgument):
            logopts.from_log_config(bad)
    assert logopts.log_config(None, []) is None
    with pytest.raises(InvalidArgument, match="KEY=VALUE"):
        logopts.log_config(None, ["max-size"])


def test_since_until_values_like_docker() -> None:
    now = 1_000_000 * 10**9
    assert api_timestamp("10m", "--since", now) == str(1_000_000 - 600)
    assert api_timestamp("1h30m", "--since", now) == str(1_000_000 - 5400)
    assert api_timestamp("1764866038.5", "--since") == "1764866038.5"
    assert api_timestamp("2026-12-04T16:53:58.123456789Z", "--since") == "1796403238.123456789"
    assert api_timestamp("2026-12-04T17:53:58+01:00", "--since") == "1796403238.000000000"
    with pytest.raises(InvalidArgument, match="--until"):
        api_timestamp("yesterday", "--until")


def test_a_raw_log_of_an_older_shim_is_shown_as_stdout(tmp_path: Path) -> None:
    log = tmp_path / "container.log"
    log.write_bytes(b"old line\n{not a record}\n")
    assert records(log) == [("stdout", b"old line\n"), ("stdout", b"{not a record}\n")]
    assert records(log, since_ns=1) == []  # no time known: before any since


def test_a_log_that_cannot_be_written_does_not_stop_the_output() -> None:
    output = Output({"log_path": "/dev/full"})  # every write: ENOSPC
    os.write(output.stdio[1], b"still copied\n")
    os.write(output.stdio[2], b"and this\n")
    output.forked()  # the container's ends closed, as after the fork: EOF once drained
    output.relay()  # returns (no OSError) once both pipes are drained
    assert output.log is None and output.sources == {}


def test_output_relays_pipes_to_the_log(tmp_path: Path) -> None:
    log = tmp_path / "container.log"
    output = Output({"log_path": str(log), "log_max_size": 4096, "log_max_files": 2})
    os.write(output.stdio[1], b"out\n")
    os.write(output.stdio[2], b"err")  # unfinished: logged at EOF
    output.forked()
    output.relay()
    assert sorted(records(log)) == [("stderr", b"err"), ("stdout", b"out\n")]
