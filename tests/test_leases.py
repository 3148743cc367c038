"""Client-side result leases: held, released from finalizers, collected by the transport."""

from __future__ import annotations

import gc
import threading
import weakref

from bridge.client.leases import ResultLeases


def test_hold_and_release_in_order():
    leases = ResultLeases()
    hooks = {lease: leases.hold(lease) for lease in (3, 1, 2)}
    assert leases.held() == {1, 2, 3}
    assert leases.take_released() == []
    hooks[2]()
    hooks[3]()
    assert leases.held() == {1, 2, 3}  # still held until the release is sent
    assert leases.take_released() == [2, 3]
    assert leases.held() == {1}
    assert leases.take_released() == []


def test_each_lease_is_reported_once():
    leases = ResultLeases()
    release = leases.hold(7)
    release()
    release()
    assert leases.take_released() == [7]
    release()
    assert leases.take_released() == []


def test_unknown_and_forgotten_leases_are_not_reported():
    leases = ResultLeases()
    release = leases.hold(5)
    leases.forget()
    release()
    assert leases.held() == set()
    assert leases.take_released() == []


def test_a_release_from_before_a_restart_never_frees_a_reused_id():
    leases = ResultLeases()
    old_release = leases.hold(1)
    leases.forget()  # the server restarted: it hands out lease 1 again
    new_release = leases.hold(1)
    old_release()  # the array from before the restart is collected
    assert leases.take_released() == []
    assert leases.held() == {1}
    new_release()
    assert leases.take_released() == [1]


class _Result:
    """Stands in for the memory of an opened array."""


def test_release_from_a_finalizer_in_another_thread():
    leases = ResultLeases()
    result = _Result()
    weakref.finalize(result, leases.hold(11))
    box = [result]
    del result

    def drop():
        box.clear()
        gc.collect()

    worker = threading.Thread(target=drop)
    worker.start()
    worker.join()
    assert leases.take_released() == [11]


def test_release_while_the_lock_is_held_does_not_deadlock():
    leases = ResultLeases()
    release = leases.hold(4)
    # A finalizer may fire inside any bridge call, including one holding the lease lock.
    with leases._lock:
        release()
    assert leases.take_released() == [4]
