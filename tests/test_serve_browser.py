"""The viewer in a real headless browser (Chromium through Selenium).

Runs ``rollout-trace serve`` as a subprocess on a root with the realistic
example (sub-agents, terminal, code cell, compaction), a bundle full of
hostile strings, a broken bundle and, in the live test, a bundle that grows
while the page is open. Screenshots of each page go to
``$ROLLOUT_TRACE_SCREENSHOTS`` (default ``build/serve-screenshots``).

Needs ``selenium`` plus Debian's ``chromium`` and ``chromium-driver`` (or
``ROLLOUT_TRACE_CHROMIUM`` / ``ROLLOUT_TRACE_CHROMEDRIVER``); skips with the
reason when they are missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette", reason="rollout-trace serve needs the [serve] extra (starlette, uvicorn)")
pytest.importorskip("uvicorn", reason="rollout-trace serve needs the [serve] extra (starlette, uvicorn)")
pytest.importorskip("selenium", reason="browser tests need selenium (pip install selenium)")

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import TimeoutException, WebDriverException  # noqa: E402
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from rollout_trace.testing import BundleBuilder, assistant, function_call, user  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_serve import HOSTILE, write_hostile  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "realistic-bundle"
SHOTS = Path(os.environ.get("ROLLOUT_TRACE_SCREENSHOTS", REPO / "build" / "serve-screenshots"))
HOSTILE_ID = "<img src=x onerror=window.__pwned=9>"
WAIT = 15


def find_browser() -> tuple[str, str]:
    """(chromium binary, chromedriver) or skip, saying what is missing."""
    binary = os.environ.get("ROLLOUT_TRACE_CHROMIUM") or next(
        (found for name in ("chromium", "chromium-browser", "google-chrome", "chrome") if (found := shutil.which(name))), None)
    driver = os.environ.get("ROLLOUT_TRACE_CHROMEDRIVER") or shutil.which("chromedriver") or (
        "/usr/lib/chromium/chromedriver" if os.path.exists("/usr/lib/chromium/chromedriver") else None)
    if not binary or not driver:
        pytest.skip("no headless browser: install Debian's chromium and chromium-driver "
                    "(or set ROLLOUT_TRACE_CHROMIUM and ROLLOUT_TRACE_CHROMEDRIVER)")
    return binary, driver


def start_browser(width: int = 1440, height: int = 860) -> WebDriver:
    binary, driver = find_browser()
    options = Options()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     f"--window-size={width},{height}", "--hide-scrollbars", "--force-device-scale-factor=1",
                     "--disable-extensions", "--no-first-run"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        return webdriver.Chrome(options=options, service=Service(driver))
    except WebDriverException as error:
        pytest.skip(f"cannot start headless Chromium ({binary}, {driver}): {error.msg}")


class Server:
    """``rollout-trace serve ROOT --port 0`` in a subprocess."""

    def __init__(self, root: Path, *extra: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO / "python") + os.pathsep + os.environ.get("PYTHONPATH", "")}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rollout_trace.cli", "serve", str(root), "--port", "0", "--poll", "0.2", *(extra or ("--no-cache",))],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("rollout-trace serve: http://"):
            self.close()
            raise RuntimeError(f"serve did not start: {line!r} {self.process.stderr.read() if self.process.stderr else ''}")
        self.url = line.split()[2].rstrip("/")

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("serve-root")
    shutil.copytree(EXAMPLE, root / "realistic")
    write_hostile(root / HOSTILE_ID)
    shutil.copytree(EXAMPLE, root / "broken")
    with open(root / "broken" / "trace.jsonl", "a") as log:
        log.write('{"truncated": ')
    return root


@pytest.fixture(scope="module")
def server(root: Path) -> Iterator[Server]:
    running = Server(root)
    yield running
    running.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    driver = start_browser()
    yield driver
    driver.quit()


def wait(driver: WebDriver, condition: Callable[[WebDriver], Any], what: str, timeout: float = WAIT) -> Any:
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.05).until(condition)
    except TimeoutException:
        shot(driver, "failed-" + "".join(c if c.isalnum() else "-" for c in what)[:40])
        if os.environ.get("SERVE_DEBUG_HANG"):
            import urllib.request
            url = driver.current_url.split("#")[0]
            try:
                print("DIRECT", urllib.request.urlopen(url + "api/bundles", timeout=5).status)
            except Exception as error:
                print("DIRECT failed", error)
            subprocess.run(["bash", "-c", f"ss -tnp | grep {url.split(':')[2].rstrip('/')} | wc -l; py-spy dump --pid $(pgrep -f 'rollout_trace.cli serve' | head -1) 2>&1 | head -80"])
        state = driver.execute_script("return [location.href, document.getElementById('detail') && document.getElementById('detail').innerText.slice(0, 200)]")
        raise AssertionError(f"timed out waiting for {what}; page {state}; browser log: {driver.get_log('browser')[-5:]}") from None


def shot(driver: WebDriver, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SHOTS / f"{name}.png"))


def erase(field: Any) -> None:
    """Empties an input the way typing does (firing input events, unlike ``clear()``)."""
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(Keys.BACKSPACE)


def text(driver: WebDriver, selector: str) -> str:
    """The text of the first element matching ``selector``, ``""`` if there is none yet."""
    return driver.execute_script("const el = document.querySelector(arguments[0]); return el ? el.innerText : ''", selector)


def css(driver: WebDriver, selector: str) -> list[Any]:
    return driver.find_elements(By.CSS_SELECTOR, selector)


def open_bundle(driver: WebDriver, server: Server, bundle_id: str, **extra: str) -> None:
    from urllib.parse import urlencode

    driver.get("about:blank")
    driver.get(f"{server.url}/#/bundle?{urlencode({'b': bundle_id, **extra})}")
    wait(driver, lambda d: d.execute_script("return document.body.dataset.ready") == "1", f"bundle {bundle_id}")


def list_rows(driver: WebDriver) -> dict[str, dict[str, str]]:
    """The bundle list as {id: {"text", "class"}}, read in one go (the list re-renders as summaries arrive)."""
    return driver.execute_script(
        "const out = {}; for (const r of document.querySelectorAll('#bundles tbody tr'))"
        " out[r.dataset.id] = {text: r.innerText, class: r.className}; return out;")


def js_errors(driver: WebDriver) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


# ---------------------------------------------------------------- pages

def test_bundle_list(browser: WebDriver, server: Server, root: Path) -> None:
    browser.get(server.url + "/")
    rows = wait(browser, lambda d: (r := list_rows(d)) and len(r) == 3 and not any("pending" in v["class"] for v in r.values()) and r,
                "three summarized rows")
    real = rows["realistic"]["text"]
    for expected in ("completed", "1m19s", "gpt-5.1-codex", "24,680", "18,048", "11,146", "8,313", "The parse_amount tests"):
        assert expected in real
    broken = rows["broken"]["text"]
    assert "error" in broken and "lenient view" in broken and "trace.jsonl" in broken
    shot(browser, "list")

    # sort by a column, then filter
    browser.execute_script("document.querySelector('th[data-key=\"input\"]').click()")
    wait(browser, lambda d: "sorted" in css(d, 'th[data-key="input"]')[0].get_attribute("class"), "sorted by input tokens")
    order = browser.execute_script("return [...document.querySelectorAll('#bundles tbody tr')].map(r => r.dataset.id)")
    assert order[-1] == HOSTILE_ID  # fewest input tokens last
    search = css(browser, "#filter")[0]
    search.send_keys("parse_amount")
    wait(browser, lambda d: len(css(d, "#bundles tbody tr")) == 2, "filter to the two copies")
    erase(search)
    wait(browser, lambda d: len(css(d, "#bundles tbody tr")) == 3, "the filter cleared")

    # a new bundle appears without a reload
    grown = BundleBuilder(root / "new-session")
    with grown.turn():
        grown.inference([user("a new session")], [assistant("hello")])
    grown.finish()
    wait(browser, lambda d: "a new session" in list_rows(d).get("new-session", {}).get("text", ""), "the new bundle in the list")
    assert not js_errors(browser)


def test_bundle_with_sub_agents(browser: WebDriver, server: Server) -> None:
    open_bundle(browser, server, "realistic")
    threads = css(browser, "a.thread")
    assert [t.find_element(By.CSS_SELECTOR, ".path").text for t in threads] == [
        "/root", "/root/ci_log_scanner", "/root/format_auditor"]
    assert "Vega" in threads[1].text and "Orion" in threads[2].text and "task ci_log_scanner" in threads[1].text
    kinds = {row.get_attribute("data-kind") for row in css(browser, "#timeline .row")}
    assert kinds == {"turn", "inference", "tool", "cell", "compaction"}
    assert "cargo test" in text(browser, "#timeline .row.failed")
    shot(browser, "timeline")

    threads[1].click()
    wait(browser, lambda d: "/root/ci_log_scanner" in text(d, ".view-head") and
         len(css(d, '#timeline .row[data-kind="turn"]')) == 2, "the helper's timeline")

    css(browser, '[data-tab="transcript"]')[0].click()
    items = wait(browser, lambda d: css(d, "#transcript .item"), "the transcript")
    assert "16 items" in css(browser, ".view-head")[0].text and len(items) == 16
    reasoning = css(browser, "#transcript .item details")
    assert reasoning and all(d.get_attribute("open") is None for d in reasoning)  # folded
    css(browser, "a.thread")[0].click()
    wait(browser, lambda d: "60 items" in text(d, ".view-head"), "the root transcript")
    shot(browser, "transcript")


def test_tool_call_and_raw_payload(browser: WebDriver, server: Server) -> None:
    open_bundle(browser, server, "realistic")
    css(browser, "#timeline .row.failed")[0].click()
    wait(browser, lambda d: "exit code 101" in text(d, "#detail"), "the tool call's detail")
    detail = css(browser, "#detail")[0].text
    assert "exec_command" in detail and "issued by" in detail and "test result: FAILED" in detail
    buttons = css(browser, "#detail button.payload")
    assert buttons and all(not css(browser, "pre.raw") for _ in [0])  # nothing loaded before it is opened
    buttons[0].click()
    raw = wait(browser, lambda d: css(d, '#detail pre.raw[data-loaded="1"]'), "the raw payload")[0]
    assert raw.text.startswith("{\n  ") or raw.text.startswith("{")
    assert '"cmd"' in raw.text or "cargo test" in raw.text
    browser.execute_script("document.querySelector('#detail .payloads').scrollIntoView()")
    shot(browser, "tool-call")


def test_search(browser: WebDriver, server: Server) -> None:
    open_bundle(browser, server, "realistic")
    box = css(browser, "#search")[0]
    box.send_keys("rg -c FAILED")
    hits = wait(browser, lambda d: css(d, '#search-results[data-query="rg -c FAILED"] .hit'), "search results")
    assert any(h.get_attribute("data-kind") == "tool" for h in hits)
    shot(browser, "search")
    tool = next(h for h in hits if h.get_attribute("data-kind") == "tool")
    tool.click()
    wait(browser, lambda d: "rg -c FAILED" in text(d, "#detail"), "the found tool call")
    # the tool call is in a helper: the thread switched with it
    wait(browser, lambda d: "/root/ci_log_scanner" in text(d, "a.thread.active"), "the helper selected")
    erase(box)
    box.send_keys("conversation_item:66")
    hits = wait(browser, lambda d: css(d, '#search-results[data-query="conversation_item:66"] .hit[data-id="conversation_item:66"]'),
                "an id search")
    assert hits


def test_prompt_inspector(browser: WebDriver, server: Server) -> None:
    open_bundle(browser, server, "realistic")
    css(browser, '#timeline .row[data-kind="inference"]')[1].click()
    wait(browser, lambda d: css(d, "#open-prompt"), "the inference detail")[0].click()
    wait(browser, lambda d: css(d, "#prompt"), "the prompt inspector")
    sections = {s.get_attribute("data-section"): s for s in css(browser, "#prompt details.psec")}
    assert set(sections) == {"instructions", "developer", "context", "earlier", "new", "tools", "settings"}
    assert "You are Codex" in sections["instructions"].text
    assert "New in this request 2" in sections["new"].text and "Earlier history 5" in sections["earlier"].text
    assert "AGENTS.md and environment context 1" in sections["context"].text
    assert "Tool definitions" in sections["tools"].text
    response = css(browser, "#prompt .response")[0].text
    assert "Token usage" in response and "1,096" in response and "write_stdin" in response
    shot(browser, "prompt-inspector")


def test_agent_graph(browser: WebDriver, server: Server) -> None:
    open_bundle(browser, server, "realistic", tab="graph")
    nodes = css(browser, "#graph g.node")
    assert len(nodes) == 3
    edges = css(browser, "#graph g.edge")
    assert len(edges) == 8
    shot(browser, "agent-graph")
    spawn = css(browser, "#graph g.edge.e-spawn_agent")[0]
    browser.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))", spawn)
    wait(browser, lambda d: "spawn_agent" in text(d, "#detail") and "TOOL" in text(d, "#detail .detail-head").upper(),
         "the spawn tool call")
    result = css(browser, "#graph g.edge.e-agent_result")[0]
    browser.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))", result)
    wait(browser, lambda d: text(d, "#detail .detail-head").upper().startswith("ITEM"), "the delivered message")


def test_live_bundle_grows(browser: WebDriver, server: Server, root: Path) -> None:
    bundle = BundleBuilder(root / "live")
    with bundle.turn():
        bundle.inference([user("start a long task")], [function_call("exec_command", {"cmd": "make"}, "c1")])
        bundle.tool_call("c1", "exec_command", detail="make")
        open_bundle(browser, server, "live")
        css(browser, "#follow")[0].click() if not css(browser, "#follow")[0].is_selected() else None
        assert len(css(browser, '#timeline .row[data-kind="inference"]')) == 1
        assert css(browser, "#live")[0].is_displayed()
        for step in range(2, 5):
            bundle.inference([user(f"step {step}")], [assistant(f"done with step {step}")])
            wait(browser, lambda d: len(css(d, '#timeline .row[data-kind="inference"]')) == step, f"inference {step} live")
        shot(browser, "live")
    bundle.finish()
    wait(browser, lambda d: not text(d, "#live"), "the end of the session")
    assert "completed" in text(browser, "#stats")


def test_hostile_text_is_inert(browser: WebDriver, server: Server) -> None:
    browser.get(server.url + "/")
    row = wait(browser, lambda d: (r := list_rows(d).get(HOSTILE_ID)) and "pending" not in r["class"] and r,
               "the hostile bundle listed")
    assert HOSTILE_ID in row["text"]
    open_bundle(browser, server, HOSTILE_ID)
    css(browser, '[data-tab="transcript"]')[0].click()
    wait(browser, lambda d: css(d, "#transcript .item"), "the hostile transcript")
    shown = css(browser, "#transcript")[0].text
    for hostile in HOSTILE[:3]:
        assert hostile in shown  # shown literally
    css(browser, '[data-tab="timeline"]')[0].click()
    rows = wait(browser, lambda d: css(d, '#timeline .row[data-kind="tool"]'), "the hostile tool call")
    rows[0].click()
    wait(browser, lambda d: HOSTILE[4] in text(d, "#detail"), "the hostile tool detail")
    assert "⟦U+202E⟧" in text(browser, "#detail")  # a right-to-left override is shown, not obeyed
    box = css(browser, "#search")[0]
    box.send_keys("<img")
    wait(browser, lambda d: css(d, '#search-results[data-query="<img"] .hit'), "hostile search results")
    shot(browser, "hostile")
    assert browser.execute_script("return window.__pwned === undefined && window.alert.toString().includes('native')")
    assert not css(browser, 'img[src="x"], iframe, svg[onload], [onerror], [onload]')
    scripts = [s.get_attribute("src") for s in css(browser, "script")]
    assert scripts == [server.url + "/static/app.js"]
    assert not [e for e in js_errors(browser) if "Content Security Policy" not in e]
