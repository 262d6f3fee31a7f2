"""shmkit's exceptions. Each subclass is also the matching built-in, so
``except FileNotFoundError`` catches ``shmkit.NotFound``."""

__all__ = [
    "Error", "NotFound", "AlreadyExists", "PermissionDenied", "Timeout",
    "PeerGone", "Busy", "Corrupt", "Truncated", "InvalidName",
    "InvalidArgument", "Closed", "ServiceError",
]


class Error(Exception):
    """Anything that went wrong in shmkit. The message names the object
    (``/name``, ``key:0x0000abcd``, ``id:7``); ``target`` holds that name
    (or None) and ``errno`` the OS error where there was one."""

    target = None


class NotFound(Error, FileNotFoundError):
    """The object does not exist."""


class AlreadyExists(Error, FileExistsError):
    """The object exists, and the call asked to create it."""


class PermissionDenied(Error, PermissionError):
    """Not allowed: permissions, a read-only handle, or an existing object
    refused as someone else's (owned by another user, or wider permissions
    than asked for)."""


class Timeout(Error, TimeoutError):
    """A wait reached its timeout."""


class PeerGone(Error):
    """The other side (a channel's peer, a many-to-one receiver, a service's
    server) died without closing it."""


class Busy(Error):
    """The side asked for (a channel's, a writer's, a server's; or every
    seat of a many-to-one or service) is taken by another process."""


class Corrupt(Error):
    """Data in shared memory that does not follow its format (or was made by
    another shmkit version)."""


class Truncated(Error):
    """The object shrank while mapped here: another process truncated it."""


class InvalidName(Error, ValueError):
    """A POSIX name that the rules refuse (one leading '/', no other)."""


class InvalidArgument(Error, ValueError):
    """An argument that cannot be used: a size out of range, a message longer
    than the channel carries, a capacity conflict, ..."""


class Closed(Error, EOFError):
    """The other side has closed the channel (and, for a receiver, every
    message has been received)."""


class ServiceError(Error):
    """A service's server answered a request with an error response
    (``Server.respond_error``); ``body`` holds the bytes it sent."""

    body = b""
