"""The engine's connection file: where its sockets are and the key that signs every message.

The file lives in ``places().runtime_dir`` as ``engine.json``, is created readable by its owner
only (``os.open`` with mode 0o600, then renamed into place, never chmod-ed afterwards), and holds::

    {"transport": "ipc", "request": "ipc:///run/user/1000/Chronoscope/e4242-req",
     "control": "...", "events": "...", "key": "<64 hex digits>", "pid": 4242,
     "protocol_version": "1.0", "signature_scheme": "hmac-sha256", "ipc_dir": "...",
     "exchange_dir": "/run/user/1000/Chronoscope/frames"}

``exchange_dir`` is the private folder where clients put large frames (see ``exchange``).

On POSIX the key stays private: the folders the engine keeps it and its sockets in are made 0o700
(``ensure_private_dir``; a folder another user owns is refused), and a client refuses a connection
file that group or others may read or write (``read_connection_file``), saying to ``chmod 600`` it.

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

from engine.errors import ConnectionFileError, EngineNotRunningError, FileAccessError, UnsupportedOptionError
from engine.places import folder_fix, how_to_move, place_of, places
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


def ensure_private_dir(path: Path, what: str = "its key and sockets") -> Path:
    """Create ``path`` (mode 0o700) and return it; ``what`` the engine keeps there, for messages.
    On POSIX an existing folder of Chronoscope's own (under one of its places, ``engine.places``)
    is made private too (0o700) when it is open to group or others; a folder of the user's
    choosing (a ``--connection-file`` elsewhere) is never changed, only refused when others may
    write in it (and so replace the file) without the sticky
    bit. ``ConnectionFileError`` when another user owns the folder or it cannot be made private,
    ``FileAccessError`` when it cannot be made; both say what to do, for the folder it is (the
    variable that moves it, ``places.how_to_move``).

    Missing folders above ``path`` are made 0o700 too, not with the umask's mode: a missing
    ``$XDG_RUNTIME_DIR`` made 0o755 would be refused by platformdirs in every later process, which
    would then look for the engine somewhere else."""
    path = Path(path)
    missing = []
    candidate = path
    while not os.path.lexists(candidate) and candidate.parent != candidate:
        missing.append(candidate)
        candidate = candidate.parent
    try:
        for folder in reversed(missing):
            with contextlib.suppress(FileExistsError):  # made meanwhile by another process
                folder.mkdir(mode=0o700)
        path.mkdir(exist_ok=True, mode=0o700)
    except OSError as error:
        raise FileAccessError(
            f"cannot make folder {path}, where the engine keeps {what}: {error.strerror or error} "
            f"({error.filename or path}); {folder_fix(path)}"
        ) from None
    if os.name == "nt":
        return path
    info = path.stat()
    if info.st_uid != os.getuid():
        raise ConnectionFileError(
            f"folder {path} belongs to another user (uid {info.st_uid}, you are {os.getuid()}), so the "
            f"engine cannot keep {what} private there; {how_to_move(place_of(path))}"
        )
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077 and not _is_own_place(path):
        if mode & 0o022 and not mode & stat.S_ISVTX:
            raise ConnectionFileError(
                f"folder {path} lets other users write in it (mode {mode:04o}), so they could replace "
                "the engine's files there; use a folder of your own, or `chmod go-w` it"
            )
        return path  # the user's folder: its files are private (0o600) themselves
    if mode & 0o077:
        try:
            path.chmod(0o700)
        except OSError as error:
            raise ConnectionFileError(
                f"folder {path} is open to other users (mode {mode:04o}) and cannot be made private "
                f"({error}); run `chmod 700 {path}` or use a folder of your own"
            ) from None
        level = logging.WARNING if mode & 0o022 else logging.INFO  # others could write there
        log.log(level, "folder %s was open to other users (mode %04o); made it private (0700)", path, mode)
    return path


def _is_own_place(path: Path) -> bool:
    """Whether ``path`` is one of Chronoscope's own folders (``engine.places``) or inside one."""
    from engine.places import places

    resolved = Path(path).resolve()
    own = places()
    for root in (own.runtime_dir, own.log_dir, own.cache_dir, own.data_dir, own.config_dir):
        try:
            resolved.relative_to(Path(root).resolve())
        except ValueError:
            continue
        return True
    return False


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


def check_private_file(path: Path, info: os.stat_result | None = None) -> None:
    """``ConnectionFileError`` when the connection file at ``path`` (``info``: its ``stat``, looked
    up when None) may be read or written by group or others (POSIX; nothing is checked on Windows)."""
    if os.name == "nt":
        return
    if info is None:
        try:
            info = os.stat(path)
        except OSError as error:
            raise ConnectionFileError(f"cannot read connection file {path}: {error}") from None
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise ConnectionFileError(
            f"connection file {path} is open to other users (mode {mode:04o}) and holds the engine's "
            f"key; make it private with `chmod 600 {path}`"
        )


def read_connection_file(path: Path | None = None, *, private: bool = True) -> ConnectionInfo:
    """Read a connection file; ``EngineNotRunningError`` when there is none. With ``private`` (as
    every client reads it), ``ConnectionFileError`` for a file that group or others may read or
    write: its key signs every request. ``private=False`` is for removing a stale file."""
    path = Path(path) if path else connection_file_path()
    try:
        with open(path, encoding="utf-8") as stream:
            if private:
                check_private_file(path, os.fstat(stream.fileno()))
            text = stream.read()
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
            if read_connection_file(path, private=False).pid != pid:
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
