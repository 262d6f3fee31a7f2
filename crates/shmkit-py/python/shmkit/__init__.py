"""shmkit: POSIX and System V shared memory and fast, crash-aware channels
between processes, for Linux.

Segments::

    seg = shmkit.PosixShm.create("/jobs", 4096)      # mode 0o600, exclusive
    view = seg.map()                                  # a memoryview of the mapping
    view[:5] = b"hello"
    shmkit.remove("/jobs")

Channels (either side may start first)::

    with shmkit.Sender("/jobs") as tx:                # in one process
        tx.send(b"work")
    with shmkit.Receiver("/jobs") as rx:              # in another
        for msg in rx:                                # until the sender closes
            print(msg)

Zero-copy receiving: ``with rx.recv_view() as view:`` lends a read-only
memoryview of the message in shared memory, valid inside the block
(``numpy.frombuffer(view, dtype)`` works there).

Latest values (one writer that never waits, any number of readers)::

    w = shmkit.LatestValue.writer("/pose", max_size=64, keep=True)
    w.write(b"x=1 y=2")
    r = shmkit.LatestValue.reader("/pose")          # in another process
    r.read()                                        # b"x=1 y=2", never torn
    version, value = r.wait_newer(r.version, timeout=1.0)

Event loops: every endpoint that can wait has ``fileno()`` (for
``selectors`` or asyncio's ``loop.add_reader``) and ``try_*`` calls that never
wait; readable means "try again", and a ``try_*`` call that returns ``None``
(or ``False``) arms the descriptor::

    sel.register(rx, selectors.EVENT_READ)
    ...
    while (msg := rx.try_recv()) is not None:
        handle(msg)

``SharedMemory`` is a drop-in for ``multiprocessing.shared_memory.SharedMemory``
that never registers with the resource tracker.
"""

import os as _os
import secrets as _secrets

from . import _errors
from ._errors import (
    AlreadyExists,
    Busy,
    Closed,
    Corrupt,
    Error,
    Lagged,
    ServiceError,
    InvalidArgument,
    InvalidName,
    NotFound,
    PeerGone,
    PermissionDenied,
    Timeout,
    Truncated,
)
from ._shmkit import (
    MAX_CAPACITY,
    Client,
    LatestValue,
    ManyToOneReceiver,
    ManyToOneSender,
    Request,
    Server,
    Subscriber,
    PosixShm,
    Publisher,
    Receiver,
    RecvView,
    Sender,
    SysvShm,
    SysvStat,
    ftok,
    remove,
)

__all__ = [
    "PosixShm", "SysvShm", "SysvStat", "SharedMemory", "Sender", "Receiver",
    "RecvView", "LatestValue", "ManyToOneSender", "ManyToOneReceiver",
    "Server", "Client", "Request", "Publisher", "Subscriber", "remove", "ftok", "MAX_CAPACITY",
] + _errors.__all__


class SharedMemory:
    """A drop-in for ``multiprocessing.shared_memory.SharedMemory``: the same
    constructor, ``name``, ``size``, ``buf``, ``close()`` and ``unlink()``,
    and the same objects (``/dev/shm/<name>``), so either class opens what the
    other made. Unlike the standard library's, it never registers with the
    resource tracker: no process unlinks a segment that another still uses,
    and no "leaked shared_memory" warnings. Remove it with ``unlink()`` (or
    ``shmkit.remove``) when everybody is done.

    ``name`` is given and shown without the leading ``/``, as the standard
    library does; a new object is made with mode 0o600.
    """

    def __init__(self, name=None, create=False, size=0):
        if not size >= 0:
            raise ValueError("'size' must be a positive integer")
        if create and size == 0:
            raise ValueError("'size' must be a positive number different from zero")
        if name is None and not create:
            raise ValueError("'name' can only be None if create=True")
        if name is None:
            while True:
                name = "psm_" + _secrets.token_hex(4)
                try:
                    self._seg = PosixShm.create("/" + name, size)
                    break
                except AlreadyExists:
                    continue
        else:
            name = name[1:] if name.startswith("/") else name
            if create:
                self._seg = PosixShm.create("/" + name, size)
            else:
                self._seg = PosixShm.open("/" + name)
        self._name = name
        self._size = self._seg.size
        self._buf = self._seg.map()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __reduce__(self):
        return (self.__class__, (self.name, False, self.size))

    def __repr__(self):
        return f"{self.__class__.__name__}({self.name!r}, size={self.size})"

    @property
    def buf(self):
        """A memoryview of the shared memory."""
        return self._buf

    @property
    def name(self):
        """The object's name, without the leading '/'."""
        return self._name

    @property
    def size(self):
        """The object's size in bytes."""
        return self._size

    def close(self):
        """Closes this process's access; the object stays. Raises BufferError
        while views made from ``buf`` (e.g. NumPy arrays) are alive."""
        if getattr(self, "_buf", None) is not None:
            self._buf.release()
            self._buf = None
        seg = getattr(self, "_seg", None)
        if seg is not None:
            seg.close()
            self._seg = None

    def unlink(self):
        """Removes the object's name; call it once, from any one process."""
        remove("/" + self._name)


del _os
