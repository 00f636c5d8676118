"""The Python TraceWriter: exact bytes, thread safety, clear errors."""

import json
import pathlib
import threading

import pytest

from rollout_trace import TraceWriter
from rollout_trace._native import TraceError, WriteError


def scripted_clock(*times):
    """A clock returning `times` in order, then the last one again."""
    upcoming = list(times)

    def clock():
        if len(upcoming) > 1:
            return upcoming.pop(0)
        return upcoming[0]

    return clock


def read_lines(bundle):
    return (bundle / "trace.jsonl").read_text(encoding="utf-8").split("\n")


# The reference writer's bundle for one inference attempt (conformance case
# inference__tests__enabled_context_records_replayable_inference_attempt).
# Payload 1 was written from a JSON value (sorted keys), payload 2 from a
# struct (declaration order); dict order reproduces both.
REFERENCE_MANIFEST = """{
  "schema_version": 1,
  "trace_id": "trace-1",
  "rollout_id": "rollout-1",
  "root_thread_id": "thread-root",
  "started_at_unix_ms": 1795239118896,
  "raw_event_log": "trace.jsonl",
  "payloads_dir": "payloads"
}"""
REFERENCE_LOG = (
    '{"schema_version":1,"seq":1,"wall_time_unix_ms":1795239118896,"rollout_id":"rollout-1","thread_id":null,"codex_turn_id":null,"payload":{"type":"thread_started","thread_id":"thread-root","agent_path":"/root","metadata_payload":null}}\n'
    '{"schema_version":1,"seq":2,"wall_time_unix_ms":1795239118896,"rollout_id":"rollout-1","thread_id":null,"codex_turn_id":null,"payload":{"type":"codex_turn_started","codex_turn_id":"turn-1","thread_id":"thread-root"}}\n'
    '{"schema_version":1,"seq":3,"wall_time_unix_ms":1795239118896,"rollout_id":"rollout-1","thread_id":"thread-root","codex_turn_id":"turn-1","payload":{"type":"inference_started","inference_call_id":"56254398-f67c-404b-b640-b6479dee32ee","thread_id":"thread-root","codex_turn_id":"turn-1","model":"gpt-test","provider_name":"test-provider","request_payload":{"raw_payload_id":"raw_payload:1","kind":{"type":"inference_request"},"path":"payloads/1.json"}}}\n'
    '{"schema_version":1,"seq":4,"wall_time_unix_ms":1795239118896,"rollout_id":"rollout-1","thread_id":"thread-root","codex_turn_id":"turn-1","payload":{"type":"inference_completed","inference_call_id":"56254398-f67c-404b-b640-b6479dee32ee","response_id":"resp-1","upstream_request_id":"req-1","response_payload":{"raw_payload_id":"raw_payload:2","kind":{"type":"inference_response"},"path":"payloads/2.json"}}}\n'
)
REFERENCE_PAYLOAD_1 = """{
  "input": [
    {
      "content": [
        {
          "text": "hello",
          "type": "input_text"
        }
      ],
      "role": "user",
      "type": "message"
    }
  ],
  "model": "gpt-test"
}"""
REFERENCE_PAYLOAD_2 = """{
  "response_id": "resp-1",
  "upstream_request_id": "req-1",
  "token_usage": null,
  "output_items": []
}"""


def test_injected_clock_reproduces_the_reference_bytes(tmp_path):
    bundle = tmp_path / "bundle"
    call = "56254398-f67c-404b-b640-b6479dee32ee"
    with TraceWriter.create(
        bundle, "trace-1", "rollout-1", "thread-root", clock=scripted_clock(1795239118896)
    ) as writer:
        writer.append({"type": "thread_started", "thread_id": "thread-root", "agent_path": "/root", "metadata_payload": None})
        writer.append({"type": "codex_turn_started", "codex_turn_id": "turn-1", "thread_id": "thread-root"})
        request = writer.write_json_payload(
            "inference_request",
            {
                "input": [{"content": [{"text": "hello", "type": "input_text"}], "role": "user", "type": "message"}],
                "model": "gpt-test",
            },
        )
        writer.append(
            {
                "type": "inference_started",
                "inference_call_id": call,
                "thread_id": "thread-root",
                "codex_turn_id": "turn-1",
                "model": "gpt-test",
                "provider_name": "test-provider",
                "request_payload": request,
            },
            "thread-root",
            "turn-1",
        )
        response = writer.write_json_payload(
            "inference_response",
            {"response_id": "resp-1", "upstream_request_id": "req-1", "token_usage": None, "output_items": []},
        )
        last = writer.append(
            {
                "type": "inference_completed",
                "inference_call_id": call,
                "response_id": "resp-1",
                "upstream_request_id": "req-1",
                "response_payload": response,
            },
            thread_id="thread-root",
            codex_turn_id="turn-1",
        )

    assert request == {"raw_payload_id": "raw_payload:1", "kind": {"type": "inference_request"}, "path": "payloads/1.json"}
    assert (bundle / "manifest.json").read_bytes() == REFERENCE_MANIFEST.encode()
    assert (bundle / "trace.jsonl").read_bytes() == REFERENCE_LOG.encode()
    assert (bundle / "payloads" / "1.json").read_bytes() == REFERENCE_PAYLOAD_1.encode()
    assert (bundle / "payloads" / "2.json").read_bytes() == REFERENCE_PAYLOAD_2.encode()
    assert sorted(p.name for p in (bundle / "payloads").iterdir()) == ["1.json", "2.json"]
    # The returned event is the line as written, keys in written order.
    assert json.dumps(last, separators=(",", ":")) == REFERENCE_LOG.split("\n")[3]
    assert writer.closed


def test_eight_threads_leave_contiguous_seqs_and_complete_payloads(tmp_path):
    bundle = tmp_path / "bundle"
    writer = TraceWriter.create(bundle, "trace-1", "rollout-1", "thread-root")
    threads_count, per_thread = 8, 40
    start = threading.Barrier(threads_count)
    written = {}  # raw_payload_id -> value
    failures = []

    def produce(thread):
        try:
            start.wait()
            for n in range(per_thread):
                value = {"thread": thread, "n": n, "text": "é\u2028\x01" * (n * 37 % 500), "nested": [{"k": [n, None, True]}]}
                ref = writer.write_json_payload("tool_result", value)
                written[ref["raw_payload_id"]] = value
                event = writer.append(
                    {"type": "tool_call_ended", "tool_call_id": f"tool-{thread}-{n}", "status": "completed", "result_payload": ref},
                    f"thread-{thread}",
                    "turn-1",
                )
                assert event["payload"]["result_payload"] == ref
        except BaseException as err:  # reported from the main thread
            failures.append(err)

    workers = [threading.Thread(target=produce, args=(t,)) for t in range(threads_count)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert failures == []

    lines = read_lines(bundle)
    assert lines[-1] == ""  # every line is terminated
    events = [json.loads(line) for line in lines[:-1]]
    total = threads_count * per_thread
    assert [event["seq"] for event in events] == list(range(1, total + 1))
    assert sorted(int(ref.split(":")[1]) for ref in written) == list(range(1, total + 1))
    for event in events:
        ref = event["payload"]["result_payload"]
        path = bundle / ref["path"]
        assert json.loads(path.read_text(encoding="utf-8")) == written[ref["raw_payload_id"]]
        assert path.read_text(encoding="utf-8") == json.dumps(written[ref["raw_payload_id"]], indent=2, ensure_ascii=False)
        thread, n = event["payload"]["tool_call_id"].split("-")[1:]
        assert event["thread_id"] == f"thread-{thread}"
        assert written[ref["raw_payload_id"]]["n"] == int(n)
    # No temporary file is left behind.
    assert len(list((bundle / "payloads").iterdir())) == total
    writer.close()


def test_properties_and_repr(tmp_path):
    bundle = tmp_path / "bundle"
    writer = TraceWriter.create(str(bundle), "t'1", "r1", "th", clock=lambda: 999)
    assert writer.path == bundle
    assert isinstance(writer.path, pathlib.Path)
    assert writer.manifest == {
        "schema_version": 1,
        "trace_id": "t'1",
        "rollout_id": "r1",
        "root_thread_id": "th",
        "started_at_unix_ms": 999,
        "raw_event_log": "trace.jsonl",
        "payloads_dir": "payloads",
    }
    assert repr(writer) == f"TraceWriter(path={str(bundle)!r}, trace_id=\"t'1\", rollout_id='r1', closed=False)"
    writer.close()
    writer.close()
    assert writer.closed
    assert repr(writer).endswith("closed=True)")


def test_payload_values_follow_json(tmp_path):
    writer = TraceWriter.create(tmp_path / "b", "t", "r", "th")
    value = {"z": (1, 2), "a": 10**30, "neg": -(2**63), "u64": 2**64 - 1, "f": 1.5, "s": "\x7f/\x1b", "t": False}
    ref = writer.write_json_payload("protocol_event", value)
    text = (tmp_path / "b" / ref["path"]).read_text(encoding="utf-8")
    assert text == (
        '{\n  "z": [\n    1,\n    2\n  ],\n  "a": 1000000000000000000000000000000,\n'
        '  "neg": -9223372036854775808,\n  "u64": 18446744073709551615,\n  "f": 1.5,\n'
        '  "s": "\x7f/\\u001b",\n  "t": false\n}'
    )
    # 127 nested lists are as deep as a bundle reader accepts.
    deep = []
    for _ in range(126):
        deep = [deep]
    ref = writer.write_json_payload("tool_result", deep)
    assert (tmp_path / "b" / ref["path"]).read_text().count("[") == 127


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({1, 2}, "value of type set is not JSON-serializable"),
        ({"a": object()}, "value of type object is not JSON-serializable"),
        ({1: "x"}, "dict keys must be str, got int"),
        ([float("nan")], "float NaN is not valid JSON"),
        ({"x": float("inf")}, "float inf is not valid JSON"),
    ],
)
def test_unserializable_payloads_raise_value_error(tmp_path, value, message):
    writer = TraceWriter.create(tmp_path / "b", "t", "r", "th")
    with pytest.raises(ValueError, match="payload is not JSON-serializable: " + message):
        writer.write_json_payload("tool_result", value)
    assert list((tmp_path / "b" / "payloads").iterdir()) == []


def test_cycles_and_excessive_nesting_raise_value_error(tmp_path):
    writer = TraceWriter.create(tmp_path / "b", "t", "r", "th")
    cycle = []
    cycle.append(cycle)
    too_deep = []
    for _ in range(127):
        too_deep = [too_deep]
    for value in (cycle, too_deep):
        with pytest.raises(ValueError, match="nested deeper than 127 levels"):
            writer.write_json_payload("tool_result", value)
    looping_event = {"type": "other", "kind": "k", "summary": "s", "payloads": [], "metadata": cycle}
    with pytest.raises(ValueError, match="nested deeper than 127 levels"):
        writer.append(looping_event)


def test_bad_payload_kind_raises_value_error(tmp_path):
    writer = TraceWriter.create(tmp_path / "b", "t", "r", "th")
    with pytest.raises(ValueError, match=r"unknown payload kind \"inference\"; expected one of inference_request, "):
        writer.write_json_payload("inference", {})


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (["rollout_started"], 'event payload must be a dict with a "type" key, got list'),
        ({"trace_id": "t"}, "invalid event payload: missing field `type`"),
        ({"type": "thread_begun"}, 'invalid event payload of type "thread_begun": unknown variant `thread_begun`, expected one of `rollout_started`'),
        ({"type": "thread_started", "thread_id": "th"}, 'invalid event payload of type "thread_started": missing field `agent_path`'),
        ({"type": "rollout_ended", "status": "done"}, 'invalid event payload of type "rollout_ended": unknown variant `done`'),
        (
            {"type": "tool_call_runtime_started", "tool_call_id": "x", "runtime_payload": "payloads/1.json"},
            'invalid event payload of type "tool_call_runtime_started": invalid type: string "payloads/1.json"',
        ),
        ({"type": "codex_turn_started", "codex_turn_id": 7, "thread_id": "th"}, "invalid type: integer `7`, expected a string"),
    ],
)
def test_malformed_event_payloads_raise_value_error(tmp_path, payload, message):
    writer = TraceWriter.create(tmp_path / "b", "t", "r", "th")
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        writer.append(payload)
    # A refused event spends no seq number.
    assert writer.append({"type": "rollout_ended", "status": "completed"})["seq"] == 1


def test_bad_clocks_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="clock must be a callable returning milliseconds"):
        TraceWriter.create(tmp_path / "a", "t", "r", "th", clock=123)
    with pytest.raises(ValueError, match=r"clock\(\) must return milliseconds as an int \(64-bit\), got str"):
        TraceWriter.create(tmp_path / "b", "t", "r", "th", clock=lambda: "now")
    with pytest.raises(ValueError, match=r"clock\(\) returned a bool"):
        TraceWriter.create(tmp_path / "c", "t", "r", "th", clock=lambda: True)

    class ClockBroke(Exception):
        pass

    readings = iter([5])

    def failing_clock():
        try:
            return next(readings)
        except StopIteration:
            raise ClockBroke("no more time") from None

    writer = TraceWriter.create(tmp_path / "d", "t", "r", "th", clock=failing_clock)
    with pytest.raises(ClockBroke):
        writer.append({"type": "rollout_ended", "status": "completed"})
    assert read_lines(tmp_path / "d") == [""]


def test_bad_envelope_and_constructor_arguments(tmp_path):
    writer = TraceWriter.create(tmp_path / "b", "t", "r", "th")
    with pytest.raises(TypeError):
        writer.append({"type": "rollout_ended", "status": "completed"}, thread_id=7)
    with pytest.raises(TypeError):
        TraceWriter.create(tmp_path / "c", "t", "r")
    with pytest.raises(TypeError):
        TraceWriter()


def test_refuses_an_existing_bundle(tmp_path):
    TraceWriter.create(tmp_path / "b", "t", "r", "th").close()
    with pytest.raises(WriteError, match="a bundle already exists here") as raised:
        TraceWriter.create(tmp_path / "b", "t2", "r", "th")
    assert isinstance(raised.value, TraceError)
    assert raised.value.file == "manifest.json"
    assert raised.value.bundle == str(tmp_path / "b")


def test_a_closed_writer_raises_write_error(tmp_path):
    with TraceWriter.create(tmp_path / "b", "t", "r", "th") as writer:
        writer.append({"type": "rollout_ended", "status": "completed"})
    with pytest.raises(WriteError, match="writer is closed"):
        writer.append({"type": "rollout_ended", "status": "completed"})
    with pytest.raises(WriteError, match="writer is closed"):
        writer.write_json_payload("tool_result", {})
    assert read_lines(tmp_path / "b")[1:] == [""]


def test_a_failed_payload_write_raises_write_error(tmp_path):
    writer = TraceWriter.create(tmp_path / "b", "t", "r", "th")
    (tmp_path / "b" / "payloads").rmdir()
    with pytest.raises(WriteError, match="write tool_result payload: ") as raised:
        writer.write_json_payload("tool_result", {"ok": True})
    assert raised.value.file == "payloads"
    assert not writer.closed
