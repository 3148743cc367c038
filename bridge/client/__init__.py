"""The client layer: a Python process's side of the service (julia_server/src/server/ is the
other): the connection, the server's start and address, result leases, and ``Bridge``."""

from .client import Bridge, Handle
from .julia_function import JuliaFunction

__all__ = ["Bridge", "Handle", "JuliaFunction"]
