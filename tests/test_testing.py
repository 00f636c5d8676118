"""rollout_trace.testing: the assertion helpers (what they accept, and their
failure messages word for word), BundleBuilder, and the pytest plugin's
fixture run in a pytester session."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import rollout_trace
from rollout_trace import RolloutTrace
from rollout_trace.testing import (
    BundleBuilder,
    assert_conversation,
    assert_tool_calls,
    assistant,
    custom_tool_call,
    custom_tool_call_output,
    developer,
    function_call,
    function_call_output,
    reasoning,
    user,
)

pytest_plugins = ["pytester"]

REALISTIC_BUNDLE = Path(__file__).resolve().parents[1] / "examples" / "realistic-bundle"


def fix_the_test(builder: BundleBuilder) -> RolloutTrace:
    """One turn: the model runs the tests (they fail), patches, answers."""
    with builder.turn():
        builder.inference(
            [developer("be brief"), user("fix the test")],
            [reasoning("run it first"), function_call("exec_command", {"cmd": "pytest -q"}, "call-1")],
            usage={"input_tokens": 120, "output_tokens": 30},
        )
        builder.tool_call("call-1", "exec_command", status="failed", detail="pytest -q")
        builder.inference([function_call_output("call-1", "1 failed")], [custom_tool_call("apply_patch", "*** Begin Patch", "call-2")])
        builder.tool_call("call-2", "apply_patch")
        builder.inference([custom_tool_call_output("call-2", "Success")], [assistant("Fixed: the test passes now.")])
    return builder.replay()


@pytest.fixture
def trace(tmp_path: Path) -> RolloutTrace:
    return fix_the_test(BundleBuilder(tmp_path / "bundle"))


# ------------------------------------------------ BundleBuilder


def test_builder_writes_a_bundle_that_replays(trace: RolloutTrace, tmp_path: Path) -> None:
    assert trace.status == "completed"
    root = trace.root_thread
    assert root is not None
    assert [item.kind for item in root.conversation] == [
        "message",
        "message",
        "reasoning",
        "function_call",
        "function_call_output",
        "custom_tool_call",
        "custom_tool_call_output",
        "message",
    ]
    [first, second, third] = root.inference_calls
    assert first.usage is not None and (first.usage.input_tokens, first.usage.output_tokens) == (120, 30)
    # Later requests continue the previous response, so they see everything.
    assert len(third.request_items) == 7
    assert trace.tool_calls["call-1"].inference_call == first
    assert trace.tool_calls["call-2"].inference_call == second
    assert rollout_trace.validate(tmp_path / "bundle").is_valid(strict=True)


def test_builder_is_deterministic(tmp_path: Path) -> None:
    one = fix_the_test(BundleBuilder(tmp_path / "one"))
    two = fix_the_test(BundleBuilder(tmp_path / "two"))
    assert one == two
    assert (tmp_path / "one" / "trace.jsonl").read_bytes() == (tmp_path / "two" / "trace.jsonl").read_bytes()


def test_builder_misuse_is_explained(tmp_path: Path) -> None:
    builder = BundleBuilder(tmp_path / "bundle")
    with pytest.raises(RuntimeError, match="start a turn first"):
        builder.tool_call("c", "exec_command")
    with builder.turn():
        with pytest.raises(RuntimeError, match="turns do not nest"):
            with builder.turn():
                pass
    with pytest.raises(ValueError):
        with builder.turn():
            raise ValueError("harness crashed")
    trace = builder.replay()
    assert [turn.execution.status for turn in trace.codex_turns.values()] == ["completed", "failed"]
    assert builder.finish() == tmp_path / "bundle"  # idempotent


def test_tool_kinds_outside_the_known_ones_are_named(tmp_path: Path) -> None:
    builder = BundleBuilder(tmp_path / "bundle")
    with builder.turn():
        builder.inference([user("look it up")], [function_call("lookup", {"q": "x"}, "c1")])
        builder.tool_call("c1", "lookup")
    call = builder.replay().tool_calls["c1"]
    assert call.kind.type == "other" and call.kind.name == "lookup"


# ------------------------------------------------ assert_conversation


def test_assert_conversation_passes(trace: RolloutTrace) -> None:
    root = trace.root_thread
    assert root is not None
    assert_conversation(root, [("user", "fix the test"), ("assistant", ...)])
    assert_conversation(root, [("user", re.compile("fix")), ("assistant", re.compile(r"passes now\.$"))])
    assert_conversation(
        root,
        [("developer", "be brief"), ("user", "fix the test"), ("assistant", ...)],
        roles=None,
    )
    assert_conversation(
        root,
        [("tool", "1 failed"), ("tool", "Success")],
        kinds=("function_call_output", "custom_tool_call_output"),
        roles=None,
    )


def test_assert_conversation_failure_message(trace: RolloutTrace) -> None:
    root = trace.root_thread
    assert root is not None
    with pytest.raises(AssertionError) as failure:
        assert_conversation(root, [("user", "fix the tests"), ("assistant", ...)])
    assert str(failure.value) == (
        "conversation of thread /root (thread-root) does not match "
        "(2 expected, 2 found; kinds ['message'], roles ['user', 'assistant']):\n"
        "--- expected\n"
        "+++ actual\n"
        "@@ -1,2 +1,2 @@\n"
        "-user | fix the tests\n"
        "+user | fix the test\n"
        " assistant | Fixed: the test passes now."
    )


def test_assert_conversation_reports_missing_and_extra_items(trace: RolloutTrace) -> None:
    root = trace.root_thread
    assert root is not None
    with pytest.raises(AssertionError) as missing:
        assert_conversation(root, [("user", "fix the test"), ("assistant", ...), ("user", "thanks")])
    assert "(3 expected, 2 found;" in str(missing.value)
    assert str(missing.value).endswith(" user | fix the test\n assistant | Fixed: the test passes now.\n-user | thanks")
    with pytest.raises(AssertionError) as extra:
        assert_conversation(root, [("user", "fix the test")])
    assert str(extra.value).endswith(" user | fix the test\n+assistant | Fixed: the test passes now.")


def test_assert_conversation_shows_long_text_on_one_line() -> None:
    trace = rollout_trace.replay_bundle(REALISTIC_BUNDLE)
    root = trace.root_thread
    assert root is not None
    with pytest.raises(AssertionError) as failure:
        assert_conversation(root, [("user", "hello")])
    message = str(failure.value)
    assert "+user | <environment_context>\\n  <cwd>/home/dev/src/ledgerline</cwd>\\n" in message
    assert max(len(line) for line in message.splitlines()[1:]) < 100


# ------------------------------------------------ assert_tool_calls


def test_assert_tool_calls_passes(trace: RolloutTrace) -> None:
    root = trace.root_thread
    assert root is not None
    assert_tool_calls(root, ["exec_command", "apply_patch"])
    assert_tool_calls(trace, [("exec_command", "failed", "pytest -q"), ("apply_patch", "completed")])
    assert_tool_calls(root, [{"status": "failed", "detail": re.compile("pytest")}, {"name": "apply_patch"}])
    first = root.inference_calls[0]
    assert_tool_calls(first, [("exec_command", "failed")])
    assert_tool_calls(list(trace.tool_calls.values())[1:], ["apply_patch"])


def test_assert_tool_calls_failure_message(trace: RolloutTrace) -> None:
    with pytest.raises(AssertionError) as failure:
        assert_tool_calls(trace, [("exec_command", "completed"), "apply_patch", "web"])
    assert str(failure.value) == (
        "tool calls of trace trace-1 do not match (3 expected, 2 found):\n"
        "--- expected\n"
        "+++ actual\n"
        "@@ -1,3 +1,2 @@\n"
        "-exec_command | completed\n"
        "+exec_command | failed | pytest -q\n"
        " apply_patch | completed\n"
        "-web"
    )


def test_assert_tool_calls_on_a_code_cell_and_a_thread_of_the_realistic_bundle() -> None:
    trace = rollout_trace.replay_bundle(REALISTIC_BUNDLE)
    [cell] = trace.code_cells.values()
    assert_tool_calls(
        cell,
        [
            ("exec_command", "completed", re.compile("git ls-files")),
            ("exec_command", "completed", re.compile("TODO")),
        ],
    )
    auditor = trace.threads["019b8db4-ad4b-7dd0-ade6-6ba39a1a7d6f"]
    with pytest.raises(AssertionError) as failure:
        assert_tool_calls(auditor, ["apply_patch"])
    assert str(failure.value).startswith(
        "tool calls of thread /root/format_auditor (019b8db4-ad4b-7dd0-ade6-6ba39a1a7d6f) do not match"
    )
    assert "+exec_command | completed | /bin/bash -lc rg -n 'impl fmt::Display for Amount|format_amount'" in str(
        failure.value
    )


def test_assert_tool_calls_rejects_unknown_keys(trace: RolloutTrace) -> None:
    with pytest.raises(TypeError, match=r"unknown keys \['command'\]"):
        assert_tool_calls(trace, [{"command": "pytest"}])


# ------------------------------------------------ the pytest plugin


def test_plugin_fixture_in_a_pytest_session(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from rollout_trace.testing import (
            assert_conversation, assert_tool_calls, assistant, function_call, function_call_output, user,
        )

        def write(bundle):
            with bundle.turn():
                bundle.inference([user("run make")], [function_call("exec_command", {"cmd": "make"}, "c1")])
                bundle.tool_call("c1", "exec_command", status="failed", detail="make")
                bundle.inference([function_call_output("c1", "error")], [assistant("make failed")])
            return bundle.replay()

        def test_passes(rollout_bundle, tmp_path):
            trace = write(rollout_bundle)
            assert rollout_bundle.path == tmp_path / "bundle"
            assert_conversation(trace.root_thread, [("user", "run make"), ("assistant", "make failed")])
            assert_tool_calls(trace, [("exec_command", "failed", "make")])

        def test_fails(rollout_bundle):
            trace = write(rollout_bundle)
            assert_tool_calls(trace, [("exec_command", "completed")])

        def test_unfinished_bundle_is_closed(rollout_bundle):
            with rollout_bundle.turn():
                pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*AssertionError: tool calls of trace trace-1 do not match (1 expected, 1 found):",
            "*-exec_command | completed",
            "*+exec_command | failed | make",
        ]
    )
