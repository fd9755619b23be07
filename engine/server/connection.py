"""The engine's connection file: where its sockets are and the key that signs every message.

The file lives in ``places().runtime_dir`` as ``engine.json``, is created readable by its owner
only (``os.open`` with mode 0o600, then renamed into place, never chmod-ed afterwards), and holds::

    {"transport": "ipc", "request": "ipc:///run/user/1000/Chronoscope/e4242-req",
     "control": "...", "events": "...", "key": "<64 hex digits>", "pid": 4242,
     "protocol_version": "1.0", "signature_scheme": "hmac-sha256", "ipc_dir": "...",
     "exchange_dir": "/run/user/1000/Chronoscope/frames"}

``exchange_dir`` is the private folder where clients put large frames (see ``exchange``).

Transports: ``ipc`` (Unix socket files; Linux and macOS), ``tcp`` (127.0.0.1, ports from binding
to port 0; Windows, and selectable elsewhere), ``inproc`` (one process; tests).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import stat
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from engine.errors import ConnectionFileError, EngineNotRunningError, UnsupportedOptionError
from engine.places import places
from engine.server.protocol import PROTOCOL_VERSION, SIGNATURE_SCHEME

log = logging.getLogger(__name__)

CONNECTION_FILE_NAME = "engine.json"
LOCK_FILE_NAME = "engine.lock"
TRANSPORTS = ("ipc", "tcp", "inproc")
# sockaddr_un.sun_path holds 108 bytes on Linux (104 on macOS) including the final NUL.
IPC_PATH_LIMIT_BYTES = 103 if sys.platform == "darwin" else 107
_IPC_SUFFIXES = ("req", "ctl", "evt")


@dataclass(frozen=True)
class ConnectionInfo:
    """Everything a client needs to reach and authenticate to a running engine."""

    transport: str
    request: str
    control: str
    events: str
    key: str
    pid: int
    protocol_version: str = PROTOCOL_VERSION
    signature_scheme: str = SIGNATURE_SCHEME
    ipc_dir: str | None = None
    exchange_dir: str | None = None

    def endpoints(self) -> dict[str, str]:
        return {"request": self.request, "control": self.control, "events": self.events}

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict, source: str = "connection info") -> ConnectionInfo:
        required = ("transport", "request", "control", "events", "key", "pid")
        missing = [name for name in required if name not in data]
        if missing:
            raise ConnectionFileError(f"{source} lacks {', '.join(missing)}; it needs {', '.join(required)}")
        if data["transport"] not in TRANSPORTS:
            raise ConnectionFileError(
                f"{source} names transport {data['transport']!r}; known: {', '.join(TRANSPORTS)}"
            )
        if data.get("signature_scheme", SIGNATURE_SCHEME) != SIGNATURE_SCHEME:
            raise ConnectionFileError(
                f"{source} uses signature scheme {data['signature_scheme']!r}; "
                f"this client speaks {SIGNATURE_SCHEME}"
            )
        if not isinstance(data["pid"], int) or not isinstance(data["key"], str) or not data["key"]:
            raise ConnectionFileError(f"{source} has a pid that is not a number or an empty key")
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        return cls(**known)


def new_key() -> str:
    """A fresh random signing key: 32 random bytes as 64 hex digits."""
    return secrets.token_hex(32)


def default_transport() -> str:
    """``tcp`` on Windows, ``ipc`` (Unix sockets) elsewhere."""
    return "tcp" if os.name == "nt" else "ipc"


def check_transport(transport: str) -> str:
    if transport not in TRANSPORTS:
        raise UnsupportedOptionError(
            f"transport {transport!r} is not supported; use one of: {', '.join(TRANSPORTS)}"
        )
    if transport == "ipc" and os.name == "nt":
        raise UnsupportedOptionError("transport 'ipc' is not available on Windows; use 'tcp'")
    return transport


def connection_file_path() -> Path:
    """Where this user's engine writes its connection file."""
    return places().runtime_dir / CONNECTION_FILE_NAME


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (mode 0o700 for new folders) and return it."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def ipc_endpoints(runtime_dir: Path, pid: int) -> tuple[dict[str, str], Path, bool]:
    """ipc:// endpoints for an engine with ``pid``: socket files in ``runtime_dir`` when the
    paths fit the Unix socket limit, else in a new private folder under the system temp dir.

    Returns the endpoints, the folder, and whether the folder was made for them (and is to be
    removed at shutdown).
    """
    folder = ensure_private_dir(Path(runtime_dir))
    longest = folder / f"e{pid}-{_IPC_SUFFIXES[0]}"
    made = False
    if len(os.fsencode(str(longest))) > IPC_PATH_LIMIT_BYTES:
        short_root = "/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir()
        folder = Path(tempfile.mkdtemp(prefix="chrono-", dir=short_root))
        made = True
        log.warning(
            "runtime folder %s is too long for Unix sockets (limit %d bytes); using %s",
            runtime_dir,
            IPC_PATH_LIMIT_BYTES,
            folder,
        )
    names = dict(zip(("request", "control", "events"), _IPC_SUFFIXES, strict=True))
    return {role: f"ipc://{folder / f'e{pid}-{suffix}'}" for role, suffix in names.items()}, folder, made


def write_connection_file(info: ConnectionInfo, path: Path | None = None) -> Path:
    """Write ``info`` atomically, readable and writable by its owner only (0o600)."""
    path = Path(path) if path else connection_file_path()
    ensure_private_dir(path.parent)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.partial")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    handle = os.open(temporary, flags, 0o600)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(info.to_dict(), stream, indent=2)
            stream.write("\n")
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    return path


def read_connection_file(path: Path | None = None) -> ConnectionInfo:
    """Read a connection file; ``EngineNotRunningError`` when there is none."""
    path = Path(path) if path else connection_file_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EngineNotRunningError(
            f"no engine is running: no connection file at {path}; start one with `chronoscope engine start`"
        ) from None
    except OSError as error:
        raise ConnectionFileError(f"cannot read connection file {path}: {error}") from None
    try:
        data = json.loads(text)
    except ValueError as error:
        raise ConnectionFileError(f"connection file {path} is not JSON: {error}") from None
    if not isinstance(data, dict):
        raise ConnectionFileError(f"connection file {path} holds {type(data).__name__}, not an object")
    return ConnectionInfo.from_dict(data, source=f"connection file {path}")


def remove_connection_file(path: Path | None = None, *, pid: int | None = None) -> bool:
    """Remove the connection file; with ``pid``, only if it still names that engine. True if removed."""
    path = Path(path) if path else connection_file_path()
    if pid is not None:
        try:
            if read_connection_file(path).pid != pid:
                return False
        except (EngineNotRunningError, ConnectionFileError):
            return False
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def remove_ipc_files(info: ConnectionInfo, *, remove_dir: bool) -> None:
    """Remove the socket files of an ipc engine (and their folder when it was made for them).

    Only sockets are removed: a damaged connection file cannot make this delete anything else.
    """
    if info.transport != "ipc":
        return
    for endpoint in info.endpoints().values():
        if not endpoint.startswith("ipc://"):
            continue
        path = Path(endpoint[len("ipc://") :])
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(path.lstat().st_mode):
                path.unlink()
    if remove_dir and info.ipc_dir:
        try:
            Path(info.ipc_dir).rmdir()
        except OSError as error:
            log.warning("could not remove socket folder %s: %s", info.ipc_dir, error)


