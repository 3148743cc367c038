"""Bridge addresses: ``ipc://PATH`` (a socket file, private by its directory's permissions) and
``tcp://HOST:PORT`` (authenticated with CURVE keys, docs/security.md).

An ipc address is checked before ZeroMQ connects: ZeroMQ would retry a missing or forbidden
path forever, and the caller would only learn of it as a time-out.
"""

from __future__ import annotations

import errno
import socket

from bridge.base import ServerNotFound


def ipc_path(address: str) -> str | None:
    """The socket file of an ``ipc://`` address; None for other transports."""
    return address[len("ipc://"):] if address.startswith("ipc://") else None


def check_reachable(address: str) -> None:
    """Raise at once when no server can be reached at an ipc ``address``: ``ServerNotFound`` when
    the socket file does not exist or no process listens on it, ``PermissionError`` when this
    user may not open it. Both name the path. Other transports are not checked here."""
    path = ipc_path(address)
    if path is None:
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except FileNotFoundError:
        raise ServerNotFound(f"no server at {address}: {path} does not exist") from None
    except ConnectionRefusedError:
        raise ServerNotFound(f"no server at {address}: {path} was left by a server that is gone") from None
    except PermissionError:
        raise PermissionError(errno.EACCES, f"this user may not connect to {address} (its socket or directory "
                                            "belongs to another user)", path) from None
    finally:
        probe.close()
