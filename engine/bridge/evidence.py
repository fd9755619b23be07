"""The engine's evidence for a detect result as plain lines for the end of a marker note."""

from __future__ import annotations

import json
import math
from typing import Any


def evidence_audio(evidence: Any) -> Any:
    return evidence.get("audio") if isinstance(evidence, dict) else None


def evidence_lines(evidence: Any) -> list[str]:
    """Issue 4's ``evidence`` (an object keyed by stage, or a list of findings) as the technical
    lines at the end of a marker note (the sound's say, under ``audio``, is told before them)."""
    if isinstance(evidence, dict) and isinstance(evidence.get("items"), list):
        rest = {key: value for key, value in evidence.items() if key not in ("items", "audio")}
        return _keyed_lines(rest) + evidence_lines(evidence["items"])
    if isinstance(evidence, dict):
        return _keyed_lines({key: value for key, value in evidence.items() if key != "audio"})
    if isinstance(evidence, list):
        lines = []
        for item in evidence:
            if isinstance(item, dict) and ("stage" in item or "finding" in item):
                text = f"{item.get('stage', '')}: {item.get('finding', '')}".strip(": ")
                value = item.get("value")
                lines.append(f"{text} ({_plain(value)})" if value not in (None, "") else text)
            else:
                lines.append(_plain(item))
        return lines
    return [] if evidence in (None, "") else [_plain(evidence)]


def _keyed_lines(values: dict[str, Any]) -> list[str]:
    return [
        f"{str(key).replace('_', ' ')}: {_plain(value)}"
        for key, value in values.items()
        if value not in (None, "")
    ]


def _plain(value: Any) -> str:
    """A value for people: text as it is, numbers to three significant digits."""
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return f"{value:.3g}" if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return ", ".join(f"{str(k).replace('_', ' ')} {_plain(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_plain(v) for v in value)
    return json.dumps(value, ensure_ascii=False)
