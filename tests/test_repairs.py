"""The image-mime repair on a real image-view session recorded from Codex.

Every release rejects such a session: the tool result stores the image as
``data:application/octet-stream;base64,...``, each later request re-sends
it as ``data:image/png;base64,...`` in a new payload, and image parts
compare by payload id. Even re-sent byte for byte the session fails (the
payload id still differs), so the repaired result is compared with the
reference's on the same session with each image part made a text part
naming its bytes: the reduction must be the same but for those parts.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

import rollout_trace
from rollout_trace import ReduceError

ROOT = Path(__file__).resolve().parent.parent
SESSIONS = sorted((ROOT / "tests" / "data" / "codex").glob("*/view_image/bundle"))
CACHE = Path(os.environ.get("ROLLOUT_TRACE_CACHE", Path.home() / ".cache" / "rollout-trace"))


def images_as_text(value: Any) -> Any:
    """``value`` with every image part a text part naming its decoded bytes."""
    if isinstance(value, dict):
        if value.get("type") == "input_image" and isinstance(value.get("image_url"), str):
            data = value["image_url"].split(";base64,", 1)[1]
            digest = hashlib.sha256(base64.b64decode(data)).hexdigest()[:16]
            return {"type": "input_text", "text": f"IMAGE {digest}"}
        return {key: images_as_text(item) for key, item in value.items()}
    if isinstance(value, list):
        return [images_as_text(item) for item in value]
    return value


def same_but_images(state: Any) -> Any:
    """A state with image parts and the text parts standing for them alike."""
    if isinstance(state, dict):
        if state.get("type") == "payload_ref" and state.get("label") == "input_image":
            return {"type": "image"}
        if state.get("type") == "text" and str(state.get("text", "")).startswith("IMAGE "):
            return {"type": "image"}
        return {key: same_but_images(item) for key, item in state.items()}
    if isinstance(state, list):
        return [same_but_images(item) for item in state]
    return state


def reference(bundle: Path, release: str) -> str:
    """The release's own reduction where its binary is cached, else ours
    under its profile (byte-identical to it: tests/test_codex_*.py)."""
    found = [p for p in sorted((CACHE / "codex" / release).rglob("codex")) if p.is_file()]
    if found:
        out = bundle.parent / "reference.json"
        subprocess.run([str(found[0]), "debug", "trace-reduce", str(bundle), "-o", str(out)], check=True,
                       capture_output=True, timeout=120)
        return out.read_text(encoding="utf-8")
    return rollout_trace.replay_bundle(bundle, compat=f"codex-{release}").to_json()


@pytest.mark.skipif(not SESSIONS, reason="no recorded view_image session in tests/data/codex")
@pytest.mark.parametrize("session", SESSIONS, ids=[s.parent.parent.name for s in SESSIONS])
def test_image_mime_repair_reduces_an_image_session_completely(session: Path, tmp_path: Path) -> None:
    release = session.parent.parent.name
    compat = f"codex-{release}"
    with pytest.raises(ReduceError, match="was reused with different content"):
        rollout_trace.replay_bundle(session, compat=compat)
    repaired = rollout_trace.replay_bundle(session, compat=compat, repair="image-mime")
    assert repaired.status == "completed" and repaired.repairs
    assert {note["repair"] for note in repaired.repairs} == {"image-mime"}
    assert all(note["raw_payload_id"] in repaired.raw_payloads for note in repaired.repairs)

    swapped = shutil.copytree(session, tmp_path / "bundle")
    for payload in (swapped / "payloads").iterdir():
        value = json.loads(payload.read_text(encoding="utf-8"))
        payload.write_text(json.dumps(images_as_text(value), indent=2), encoding="utf-8")
    expected = json.loads(reference(swapped, release))
    assert same_but_images(json.loads(repaired.to_json())) == same_but_images(expected)


def test_without_the_repair_the_output_is_the_references(tmp_path: Path) -> None:
    # A session without images is untouched by the repair.
    plain = ROOT / "examples" / "realistic-bundle"
    assert rollout_trace.replay_bundle(plain, repair="all") == rollout_trace.replay_bundle(plain)
    assert rollout_trace.replay_bundle(plain, repair="all").repairs == ()
    with pytest.raises(ValueError, match='unknown repair "nope"; choose from: image-mime, all'):
        rollout_trace.replay_bundle(plain, repair="nope")
