"""Reading a rollout: transcripts, the tree and the HTML views (rendered,
then parsed back to check their structure)."""

from __future__ import annotations

import io
import os
from html.parser import HTMLParser
from pathlib import Path

import pytest

import rollout_trace
from rollout_trace import RolloutTrace
from rollout_trace.analysis import fold, human_duration, tree_text

ROOT = Path(__file__).resolve().parents[1]
REALISTIC_BUNDLE = ROOT / "examples" / "realistic-bundle"
SCANNER = "019b8db4-ad4b-7241-b8f5-21027de8a234"


def shared_dir() -> Path | None:
    configured = os.environ.get("ROLLOUT_TRACE_SHARED")
    path = Path(configured) if configured else ROOT.parent / "shared"
    return path if (path / "conformance").is_dir() else None


SHARED = shared_dir()
BUNDLES = [REALISTIC_BUNDLE] + (
    sorted(p / "bundle" for p in (SHARED / "conformance").iterdir() if (p / "expected.json").is_file())
    if SHARED
    else []
)


@pytest.fixture(scope="module")
def trace() -> RolloutTrace:
    return rollout_trace.replay_bundle(REALISTIC_BUNDLE)


def test_human_duration_and_fold() -> None:
    assert [human_duration(ms) for ms in (None, 950, 12_345, 125_000, 7_500_000)] == [
        "running",
        "950ms",
        "12.3s",
        "2m05s",
        "2h05m",
    ]
    assert fold("abcdef", 10) == "abcdef"
    assert fold("abcdef", 4) == "abcd… [2 more chars]"


# ------------------------------------------------ transcript


def test_transcript_lists_every_item_with_role_channel_kind(trace: RolloutTrace) -> None:
    root = trace.root_thread
    assert root is not None
    text = root.transcript()
    lines = text.splitlines()
    assert lines[0] == f"thread /root ({root.thread_id}) [completed] 1m19s, 60 items"
    headings = [line for line in lines if line.startswith("[")]
    assert len(headings) == len(root.conversation_item_ids) == 60
    assert headings[0] == "[1] developer message"
    assert headings[2] == "[3] user message"
    assert headings[3] == "[4] assistant/analysis reasoning"
    assert headings[7] == "[8] tool/commentary function_call_output call_id=call_6NgISIwGnzQ6itzm5JTGuE52 <- terminal_operation"
    assert "[18] tool/commentary custom_tool_call_output call_id=call_hQHm6cqLAera5k3g6TpWY1qQ <- code_cell" in headings
    assert any(line.endswith("(/root/format_auditor -> /root) <- agent_message") for line in headings)
    assert "    The parse_amount tests started failing after the locale change." in text


def test_transcript_folds_long_bodies(trace: RolloutTrace) -> None:
    root = trace.root_thread
    assert root is not None
    short = root.transcript(max_chars=30)
    full = root.transcript(max_chars=100_000)
    assert len(short) < len(full)
    assert "more chars]" in short and "more chars]" not in full
    request = "The parse_amount tests started failing after the locale change. Find out why; don't fix it yet."
    assert request in full
    assert f"    {request[:30]}… [{len(request) - 30} more chars]" in short


def test_transcript_of_a_child_thread(trace: RolloutTrace) -> None:
    text = trace.threads[SCANNER].transcript()
    assert text.startswith(f'thread /root/ci_log_scanner "Vega" ({SCANNER}) [completed]')
    assert "<- agent_message" in text  # the spawn task and the later messages


# ------------------------------------------------ tree


def test_print_tree_shows_threads_turns_inferences_and_tools(trace: RolloutTrace) -> None:
    out = io.StringIO()
    trace.print_tree(file=out)
    text = out.getvalue()
    assert text == tree_text(trace)
    lines = text.splitlines()
    assert lines[0] == f"rollout {trace.rollout_id} [completed] 1m19s"
    assert lines[1] == "└─ thread /root [completed] 1m19s"
    # Children are drawn under their parent, after its turns.
    assert '   ├─ thread /root/ci_log_scanner "Vega" [completed] 30.5s' in lines
    assert '   └─ thread /root/format_auditor "Orion" [completed] 17.8s' in lines
    assert sum(line.lstrip("│ ├└─").startswith("turn ") for line in lines) == len(trace.codex_turns)
    assert sum(" inference " in f" {line.lstrip('│ ├└─')}" for line in lines) == len(trace.inference_calls)
    assert sum(line.lstrip("│ ├└─").startswith("tool ") for line in lines) == len(trace.tool_calls)
    # The failed test run sits under the inference that issued it.
    failed = next(index for index, line in enumerate(lines) if "[failed]" in line)
    assert "tool exec_command $ /bin/bash -lc cargo test -p ledger-core parse_amount [failed] 6.1s" in lines[failed]
    assert "inference gpt-5.1-codex" in lines[failed - 1]


def test_tree_nests_code_cell_tools_under_the_cell(trace: RolloutTrace) -> None:
    lines = tree_text(trace).splitlines()
    cell = next(index for index, line in enumerate(lines) if "code cell code_cell:" in line)
    depth = lines[cell].index("code cell")
    nested = lines[cell + 1 : cell + 3]
    assert all(line.index("tool exec_command") == depth + 3 for line in nested)
    assert "git ls-files" in nested[0] and "rg -c 'TODO|FIXME'" in nested[1]


def test_print_tree_defaults_to_stdout(trace: RolloutTrace, capsys: pytest.CaptureFixture[str]) -> None:
    trace.print_tree()
    assert capsys.readouterr().out == tree_text(trace)


@pytest.mark.parametrize("bundle", [pytest.param(b, id=b.parent.name) for b in BUNDLES])
def test_views_render_on_every_bundle(bundle: Path) -> None:
    trace = rollout_trace.replay_bundle(bundle, compat="crate")
    text = tree_text(trace)
    assert text.count("thread ") >= len(trace.threads)
    for thread in trace.threads.values():
        transcript = thread.transcript()
        assert transcript.count("\n[") == len(thread.conversation_item_ids)
        parse(thread._repr_html_())
    for item in trace.conversation_items.values():
        parse(item._repr_html_())
    page = parse(trace._repr_html_())
    assert {element.attrs["data-thread-id"] for element in page.with_attr("data-thread-id")} >= set(trace.threads)


# ------------------------------------------------ HTML


class Element:
    def __init__(self, tag: str, attrs: dict[str, str | None], parent: Element | None) -> None:
        self.tag = tag
        self.attrs = attrs
        self.parent = parent
        self.children: list[Element] = []
        self.text: list[str] = []

    def ancestors(self) -> list[Element]:
        found = []
        node = self.parent
        while node is not None:
            found.append(node)
            node = node.parent
        return found

    def all_text(self) -> str:
        return "".join(self.text) + "".join(child.all_text() for child in self.children)

    def walk(self) -> list[Element]:
        return [self] + [node for child in self.children for node in child.walk()]

    def with_attr(self, name: str) -> list[Element]:
        return [node for node in self.walk() if name in node.attrs]


class TreeBuilder(HTMLParser):
    """Builds an element tree and fails on a tag closed out of order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {}, None)
        self.current = self.root

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, dict(attrs), self.current)
        self.current.children.append(element)
        self.current = element

    def handle_endtag(self, tag: str) -> None:
        assert self.current.tag == tag, f"</{tag}> closes <{self.current.tag}>"
        assert self.current.parent is not None
        self.current = self.current.parent

    def handle_data(self, data: str) -> None:
        self.current.text.append(data)


def parse(markup: str) -> Element:
    builder = TreeBuilder()
    builder.feed(markup)
    builder.close()
    assert builder.current is builder.root, f"<{builder.current.tag}> is never closed"
    return builder.root


def test_thread_html_folds_tool_calls_under_their_inference(trace: RolloutTrace) -> None:
    root = trace.root_thread
    assert root is not None
    page = parse(root._repr_html_())
    inferences = {node.attrs["data-inference-call-id"]: node for node in page.with_attr("data-inference-call-id")}
    assert set(inferences) == {call.inference_call_id for call in root.inference_calls}
    tools = page.with_attr("data-tool-call-id")
    assert {node.attrs["data-tool-call-id"] for node in tools} == {call.tool_call_id for call in root.tool_calls}
    for node in tools:
        call = trace.tool_calls[str(node.attrs["data-tool-call-id"])]
        assert node.tag == "details" and "open" not in node.attrs  # folded
        enclosing = [a.attrs["data-inference-call-id"] for a in node.ancestors() if "data-inference-call-id" in a.attrs]
        assert call.inference_call is not None
        assert enclosing == [call.inference_call.inference_call_id]
        # The call's output is shown inside the fold.
        inside = {n.attrs.get("data-item-id") for n in node.walk()}
        assert set(call.model_visible_output_item_ids) <= inside
    # Each conversation item is drawn exactly once.
    items = [node.attrs["data-item-id"] for node in page.with_attr("data-item-id")]
    assert sorted(items) == sorted(root.conversation_item_ids)


def test_code_cell_html_holds_its_nested_calls(trace: RolloutTrace) -> None:
    root = trace.root_thread
    assert root is not None
    page = parse(root._repr_html_())
    [cell_node] = page.with_attr("data-code-cell-id")
    cell = trace.code_cells[str(cell_node.attrs["data-code-cell-id"])]
    nested = {node.attrs["data-tool-call-id"] for node in cell_node.with_attr("data-tool-call-id")}
    assert nested == set(cell.nested_tool_call_ids)
    assert "Script running with cell ID 1" in cell_node.all_text()


def test_trace_html_has_summary_and_every_thread(trace: RolloutTrace) -> None:
    page = parse(trace._repr_html_())
    [view] = page.with_attr("data-trace-id")
    assert view.attrs["data-trace-id"] == trace.trace_id
    threads = [node for node in page.with_attr("data-thread-id") if node.tag == "details"]
    assert [node.attrs["data-thread-id"] for node in threads] == [
        "019b8db3-fcc1-70a5-bdca-2d3e42485e3a",
        SCANNER,
        "019b8db4-ad4b-7dd0-ade6-6ba39a1a7d6f",
    ]
    assert "open" in threads[0].attrs and "open" not in threads[1].attrs
    assert "status completed" in page.all_text()


def test_item_html_escapes_content(trace: RolloutTrace) -> None:
    item = trace.conversation_items["conversation_item:1"]
    markup = item._repr_html_()
    assert "&lt;permissions instructions&gt;" in markup
    page = parse(markup)
    assert "<permissions instructions>Sandbox" in page.all_text()
    assert [node.attrs["data-item-id"] for node in page.with_attr("data-item-id")] == ["conversation_item:1"]
