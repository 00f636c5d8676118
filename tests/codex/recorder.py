"""Run a scenario with a real ``codex exec`` against the mock; reduce bundles.

Every subprocess has a timeout. Processes a run leaves behind (tool
processes of a killed session) are found by a tag in their environment
(``ROLLOUT_TRACE_HARNESS_RUN=<uuid>``, inherited from the codex process we
started) and ended by process id.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .mock import MockModel
from .releases import Release, cache_root

MODEL = "gpt-5.5"
TAG_VAR = "ROLLOUT_TRACE_HARNESS_RUN"
#: ``<pid>:<start time>`` of the harness process that started a run
OWNER_VAR = "ROLLOUT_TRACE_HARNESS_OWNER"


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def owner_id() -> str:
    return f"{os.getpid()}:{_start_time(os.getpid())}"


def _environ(pid: str) -> list[bytes]:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def reap_orphans() -> list[int]:
    """End processes that a harness started (tagged) and whose harness
    process is gone (killed before it could clean up)."""
    ended = []
    prefix = f"{OWNER_VAR}=".encode()
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        owner = next((v[len(prefix):].decode(errors="replace") for v in _environ(d) if v.startswith(prefix)), None)
        if owner is None:
            continue
        opid, _, ostart = owner.partition(":")
        if opid.isdigit() and _start_time(int(opid)) == ostart:
            continue  # its harness is alive
        try:
            os.kill(int(d), signal.SIGKILL)
            ended.append(int(d))
        except OSError:
            pass
    return ended


@dataclass
class Recording:
    scenario: str
    version: str
    bundle: Path | None
    ok: bool
    note: str = ""
    seconds: float = 0.0
    extra_bundles: list[Path] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    #: the release cannot do this scenario (not a failure)
    unsupported: bool = False


def config_toml(port: int, provider_name: str = "mock", extra: str = "", model: str = MODEL) -> str:
    return f"""model = "{model}"
model_provider = "mock"
approval_policy = "never"
sandbox_mode = "danger-full-access"
check_for_update_on_startup = false
{extra}

[model_providers.mock]
name = "{provider_name}"
base_url = "http://127.0.0.1:{port}/v1"
wire_api = "responses"
env_key = "ROLLOUT_TRACE_MOCK_KEY"
request_max_retries = 2
stream_max_retries = 2
stream_idle_timeout_ms = 20000

[analytics]
enabled = false
"""


def tagged_pids(tag: str) -> list[int]:
    needle = f"{TAG_VAR}={tag}".encode()
    me = os.getpid()
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == me:
            continue
        try:
            with open(f"/proc/{d}/environ", "rb") as f:
                env = f.read()
        except OSError:
            continue
        if needle in env.split(b"\0"):
            out.append(int(d))
    return out


def kill_tagged(tag: str) -> list[int]:
    pids = tagged_pids(tag)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return pids


class Session:
    """One scenario's environment: CODEX_HOME, workdir, mock, trace roots."""

    def __init__(self, release: Release, scripts, provider_name="mock", config_extra="",
                 workdir_files: dict[str, bytes] | None = None, keep: Path | None = None):
        reap_orphans()
        base = cache_root() / "tmp"
        base.mkdir(parents=True, exist_ok=True)
        self.root = Path(tempfile.mkdtemp(prefix=f"run-{release.version}-", dir=base))
        self.release = release
        self.home = self.root / "home"
        self.work = self.root / "work"
        self.traces = self.root / "traces"
        # HOME of the codex process and its tools: an empty one, so login
        # shells (bash -lc) do not run the machine user's profile
        self.user_home = self.root / "user-home"
        for d in (self.home, self.work, self.traces, self.user_home):
            d.mkdir()
        for name, data in (workdir_files or {}).items():
            p = self.work / name
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
        self.tag = uuid.uuid4().hex
        self.mock = MockModel(scripts, run_tag=self.tag[:8])
        self.port = self.mock.start()
        (self.home / "config.toml").write_text(config_toml(self.port, provider_name, config_extra))
        self.runs = 0
        self.log: list[str] = []
        self.thread_id: str | None = None

    def env(self, trace_root: Path) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CODEX_", "OPENAI_", "RUST_"))}
        env.update(
            CODEX_HOME=str(self.home),
            CODEX_ROLLOUT_TRACE_ROOT=str(trace_root),
            HOME=str(self.user_home),
            ROLLOUT_TRACE_MOCK_KEY="sk-mock",
            NO_COLOR="1",
            TERM="dumb",
        )
        env[TAG_VAR] = self.tag
        env[OWNER_VAR] = owner_id()
        return env

    def run(self, args: list[str], timeout: float = 120, interrupt=None) -> tuple[int | None, Path]:
        """Run ``codex exec ARGS``; return (exit status, trace root of this run).

        ``interrupt``: (signal, ready) where ``ready()`` is polled and, once
        true, the signal is sent to codex.
        """
        self.runs += 1
        troot = self.traces / f"run{self.runs}"
        troot.mkdir()
        cmd = [str(self.release.codex), "exec", "--skip-git-repo-check",
               "--dangerously-bypass-approvals-and-sandbox", "-C", str(self.work), *args]
        out = open(self.root / f"run{self.runs}.out", "wb")
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                             env=self.env(troot), cwd=self.work, start_new_session=True)
        rc = None
        try:
            if interrupt is not None:
                sig, ready = interrupt
                while time.monotonic() - t0 < timeout and p.poll() is None:
                    if ready():
                        time.sleep(0.5)
                        p.send_signal(sig)
                        break
                    time.sleep(0.05)
            try:
                rc = p.wait(timeout=max(1.0, timeout - (time.monotonic() - t0)))
            except subprocess.TimeoutExpired:
                self.log.append(f"run{self.runs}: timeout after {timeout}s, killed")
                p.kill()
                p.wait(10)
                rc = None
        finally:
            out.close()
            left = kill_tagged(self.tag)
            if left:
                self.log.append(f"run{self.runs}: ended {len(left)} leftover processes {left}")
        self.log.append(f"run{self.runs}: {' '.join(args[:3])[:80]!r} rc={rc} "
                        f"{time.monotonic() - t0:.1f}s")
        b = self.bundles(troot)
        if b and self.thread_id is None:
            try:
                self.thread_id = json.loads((b[0] / "manifest.json").read_text())["root_thread_id"]
            except (OSError, ValueError, KeyError):
                pass
        return rc, troot

    def output(self, n: int | None = None) -> str:
        n = n or self.runs
        try:
            return (self.root / f"run{n}.out").read_text(errors="replace")
        except OSError:
            return ""

    @staticmethod
    def bundles(troot: Path) -> list[Path]:
        return sorted(p for p in troot.glob("trace-*") if p.is_dir())

    def close(self) -> None:
        self.mock.stop()
        kill_tagged(self.tag)

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


# ---------------------------------------------------------------- reducing


def oracle_reduce(release: Release, bundle: Path, out: Path, timeout: float = 120) -> tuple[bool, str]:
    """``codex debug trace-reduce BUNDLE -o OUT``: (ok, stderr)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CODEX_", "RUST_"))}
    home = cache_root() / "tmp" / "reduce-home"
    home.mkdir(parents=True, exist_ok=True)
    env["CODEX_HOME"] = str(home)
    if out.exists():
        out.unlink()
    try:
        r = subprocess.run([str(release.codex), "debug", "trace-reduce", str(bundle), "-o", str(out)],
                           capture_output=True, text=True, timeout=timeout, env=env,
                           stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return False, "Error: harness: trace-reduce timed out\n"
    if r.returncode == 0 and out.exists():
        return True, r.stderr
    return False, r.stderr or f"Error: exit status {r.returncode}\n"


def error_message(stderr: str) -> str:
    """The text after ``Error: `` on the first line of the oracle's stderr."""
    for line in stderr.splitlines():
        if line.startswith("Error: "):
            return line[len("Error: "):]
    return stderr.strip().splitlines()[0] if stderr.strip() else ""
