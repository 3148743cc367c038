"""The CURVE keys of ``tcp://`` servers (docs/security.md).

Every tcp connection to a bridge server is authenticated and encrypted with ZeroMQ's CURVE. The
server's key file (JSON, mode 0600, written by ``awkward-bridge serve`` when missing) holds the
server's key pair and the one client key pair it admits; a client reads the server's public key
and the client pair from it. Whoever can read the file can run code as the server's user.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import NamedTuple, Optional

from bridge.base import AuthenticationFailed

KEY_FILE_ENV = "AWKWARD_BRIDGE_KEY_FILE"


class ClientKeys(NamedTuple):
    """What a client needs to connect: the server's public key and its own key pair (Z85)."""

    server_public: bytes
    client_public: bytes
    client_secret: bytes


def default_key_file() -> Path:
    """$AWKWARD_BRIDGE_KEY_FILE, else ``$XDG_RUNTIME_DIR/awkward-bridge/server.key``, else
    ``~/.awkward-bridge/server.key``: one key file per user, shared by that user's servers."""
    configured = os.environ.get(KEY_FILE_ENV)
    if configured:
        return Path(configured)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    base = Path(runtime) if runtime else Path.home() / ".awkward-bridge"
    if runtime:
        base = base / "awkward-bridge"
    return base / "server.key"


def load_client_keys(path: Optional[os.PathLike | str] = None) -> ClientKeys:
    """The client keys in the key file ``path`` (default ``default_key_file()``);
    ``AuthenticationFailed`` naming the file when it is missing, unreadable or not a key file."""
    file = Path(path) if path is not None else default_key_file()
    try:
        fields = json.loads(file.read_text())
    except FileNotFoundError:
        raise AuthenticationFailed(
            f"no key file at {file}: a tcp:// server admits only clients with its keys. Pass "
            f"key_file= or set {KEY_FILE_ENV} to the file `awkward-bridge serve --key-file` wrote"
        ) from None
    except PermissionError:
        raise AuthenticationFailed(f"this user may not read the key file {file}; ask its owner for a copy") from None
    except ValueError:
        raise AuthenticationFailed(f"{file} is not an awkward-bridge key file") from None
    try:
        keys = ClientKeys(*(fields[k].encode("ascii") for k in ("server_public", "client_public", "client_secret")))
    except (KeyError, TypeError, AttributeError, UnicodeEncodeError):
        raise AuthenticationFailed(f"{file} is not an awkward-bridge key file") from None
    if any(len(key) != 40 for key in keys):
        raise AuthenticationFailed(f"{file} is not an awkward-bridge key file (keys are 40 characters of Z85)")
    return keys
