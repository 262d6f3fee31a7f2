"""Fixtures: unique names, both start methods, and a session check that the
suite leaves nothing in /dev/shm."""

import itertools
import multiprocessing
import os

import pytest

import helpers

_counter = itertools.count()


def _ours():
    prefix = f"shmkit-pytest-{os.getpid()}-"
    return sorted(n for n in os.listdir("/dev/shm") if n.startswith(prefix))


@pytest.fixture(scope="session", autouse=True)
def nothing_left_in_dev_shm():
    before = set(os.listdir("/dev/shm"))
    yield
    left = _ours()
    for n in left:  # clean up, then fail
        try:
            os.unlink("/dev/shm/" + n)
        except FileNotFoundError:
            pass
    # other programs may use /dev/shm meanwhile: look at the names the suite makes
    new = {n for n in set(os.listdir("/dev/shm")) - before if n.startswith(("shmkit-pytest-", "psm_"))}
    assert not left, f"the suite left {left} in /dev/shm"
    assert not new, f"the suite left {sorted(new)} in /dev/shm"


@pytest.fixture
def name():
    """A unique POSIX name, removed after the test if it is still there."""
    n = f"/shmkit-pytest-{os.getpid()}-{next(_counter)}"
    yield n
    try:
        os.unlink("/dev/shm" + n)
    except FileNotFoundError:
        pass


@pytest.fixture(params=["spawn", "fork"])
def ctx(request):
    """A multiprocessing context for each start method."""
    return multiprocessing.get_context(request.param)


@pytest.fixture
def sysv_key():
    """A System V key unlikely to be in use: from the pid and a counter."""
    return helpers.sysv_key()
