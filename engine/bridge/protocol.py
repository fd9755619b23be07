"""The bridge's protocol: reading a request (one JSON object) and its fields, and writing the reply
as JSON or as a Lua chunk. The operations themselves live in the modules beside this one."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from engine.errors import TimelineNotFoundError, UnsupportedOptionError

PROTOCOL_VERSION = 1
OPERATIONS = ("ping", "detect", "render", "open_preview")
REPLY_FORMATS = ("json", "lua")
DEFAULT_JOB_TIMEOUT_S = 600.0
MAX_JOB_TIMEOUT_S = 2_592_000
"""The longest wait for one engine job a request may ask: 30 days (1e308 overflowed the wait)."""


def parse_request(text: str) -> dict[str, Any]:
    """The request object; ``UnsupportedOptionError`` naming what is wrong with it."""
    try:
        request = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as error:
        raise UnsupportedOptionError(
            f'the bridge request is not JSON ({error}); send one object such as {{"op": "ping"}}'
        ) from None
    except RecursionError:
        raise UnsupportedOptionError(
            "the bridge request nests arrays and objects too deeply to read; a request needs a few levels"
        ) from None
    if not isinstance(request, dict):
        raise UnsupportedOptionError(
            f"the bridge request must be a JSON object, got {type(request).__name__}"
        )
    protocol = request.get("protocol", PROTOCOL_VERSION)
    if isinstance(protocol, bool) or protocol != PROTOCOL_VERSION:
        raise UnsupportedOptionError(
            f"the script speaks bridge protocol {protocol!r}, this Chronoscope speaks {PROTOCOL_VERSION}; "
            "reinstall the Resolve scripts from this Chronoscope (its installer copies matching ones)"
        )
    op = request.get("op")
    if op not in OPERATIONS:
        raise UnsupportedOptionError(
            f"bridge operation {op!r} is not known; operations: {', '.join(OPERATIONS)}"
        )
    return request


def _refuse_constant(name: str) -> Any:
    raise UnsupportedOptionError(f"the bridge request holds {name}, which is not a JSON number")


def format_reply(reply: dict[str, Any], reply_format: str = "json") -> str:
    """The reply as JSON or as a Lua expression; ``UnsupportedOptionError`` for NaN or infinity,
    which neither can carry."""
    if reply_format == "lua":
        return "return " + lua_literal(reply) + "\n"
    try:
        return json.dumps(reply, ensure_ascii=False, allow_nan=False) + "\n"
    except ValueError as error:
        raise UnsupportedOptionError(
            f"the reply holds NaN or infinity, which JSON cannot carry ({error})"
        ) from None


def lua_literal(value: Any) -> str:
    """``value`` (plain JSON data) as a Lua 5.1+ expression; strings escaped byte by byte."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise UnsupportedOptionError(f"the reply holds {value}, which Lua cannot read back")
        return repr(value)
    if isinstance(value, str):
        return '"' + "".join(_lua_byte(byte) for byte in value.encode("utf-8")) + '"'
    if isinstance(value, (list, tuple)):
        return "{" + ", ".join(lua_literal(item) for item in value) + "}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"[{lua_literal(str(k))}] = {lua_literal(v)}" for k, v in value.items()) + "}"
    raise UnsupportedOptionError(f"the reply holds a {type(value).__name__}, which Lua cannot read back")


def _lua_byte(byte: int) -> str:
    if 32 <= byte < 127 and byte not in (34, 92):
        return chr(byte)
    return f"\\{byte:03d}"


def read_flag(request: dict[str, Any], key: str, default: bool) -> bool:
    value = request.get(key, default)
    if not isinstance(value, bool):
        raise UnsupportedOptionError(f"{key} must be true or false, got {value!r}")
    return value


def read_timeout(request: dict[str, Any]) -> float:
    value = request.get("timeout_s", DEFAULT_JOB_TIMEOUT_S)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= MAX_JOB_TIMEOUT_S:
        raise UnsupportedOptionError(
            f"timeout_s must be a number of seconds above 0 and at most {MAX_JOB_TIMEOUT_S} (30 days), "
            f"got {value!r}"
        )
    return float(value)


def read_text(request: dict[str, Any], key: str) -> str:
    """A text field, "" when it is absent or null; anything else than text is refused."""
    value = request.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise UnsupportedOptionError(f"{key} must be text, got {value!r}")
    return value


def read_mapping(request: dict[str, Any], key: str) -> dict[str, Any]:
    value = request.get(key) or {}
    if not isinstance(value, dict):
        raise UnsupportedOptionError(
            f"{key} must be an object keyed by media path, got {type(value).__name__}"
        )
    return value


def read_timeline_path(request: dict[str, Any]) -> Path:
    value = request.get("timeline")
    if not isinstance(value, str) or not value:
        raise UnsupportedOptionError(f'{request["op"]} needs "timeline": the path of an exported OTIO file')
    path = Path(value)
    if not path.is_file():
        raise TimelineNotFoundError(f"timeline file not found: {path}")
    return path


def read_clip_keys(value: Any, field: str = "clips") -> dict[tuple[str, int], dict[str, Any]]:
    """``[{"track": "V1", "record_start_frame": N}, ...]`` keyed by (track, frame). An empty object
    is an empty list: Lua writes an empty table as ``{}``."""
    if value is None or value == {}:
        return {}
    if not isinstance(value, list):
        raise UnsupportedOptionError(f'{field} must be a list of {{"track": "V1", "record_start_frame": N}}')
    keys = {}
    for item in value:
        track = item.get("track") if isinstance(item, dict) else None
        frame = item.get("record_start_frame") if isinstance(item, dict) else None
        if not isinstance(track, str) or isinstance(frame, bool) or not isinstance(frame, int):
            raise UnsupportedOptionError(
                f'{field}: clip {item!r} is not {{"track": "V1", "record_start_frame": N}} '
                "(N in frames from the timeline start)"
            )
        keys[(track, frame)] = item
    return keys


def read_disabled(value: Any) -> dict[tuple[str, int], str]:
    """The script's ``disabled`` list: what is off, by (track, frame): ``"clip"`` or ``"track"``."""
    disabled = {}
    for key, item in read_clip_keys(value, "disabled").items():
        what = item.get("what", "clip")
        if what not in ("clip", "track"):
            raise UnsupportedOptionError(
                f"disabled: clip {item!r} says what is off as {what!r}; give \"clip\" or \"track\""
            )
        disabled[key] = what
    return disabled
