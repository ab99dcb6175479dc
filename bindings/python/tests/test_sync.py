"""Lock, RLock, Semaphore, BoundedSemaphore, Condition, Event, Barrier."""

import multiprocessing as mp
import os
import pickle
import signal
import subprocess
import threading
import time
import unittest

import _util

_util.setup_root()

import shoal  # noqa: E402

fork = mp.get_context("fork")
spawn = mp.get_context("spawn")


def _hold_and_die(lock, held):
    lock.acquire()
    held.set()
    os.kill(os.getpid(), signal.SIGKILL)


def _shuffle_and_die(locks, contended, held):
    """Takes and releases locks in an order that links and unlinks them at the head,
    the middle and the tail of this thread's robust list, by the uncontended path and
    by the waiting one (contended: held by the parent until it sees `held` set once),
    then dies holding locks[0], locks[2], locks[4] and the contended lock."""
    a, b, c, d, e = locks
    for lk in (a, b, c, d):
        lk.acquire()
    b.release()  # the middle
    d.release()  # the head
    e.acquire()
    e.acquire()  # an RLock held twice: its releases take the full path
    e.release()
    held.set()
    contended.acquire()  # waits for the parent: taken by the waiting path
    e.acquire()
    c.release()
    c.acquire()
    os.kill(os.getpid(), signal.SIGKILL)


def _hold_for(lock, held, seconds):
    with lock:
        held.set()
        time.sleep(seconds)


def _try_release(lock, out):
    try:
        lock.release()
        out.value = 1
    except shoal.NotOwner:
        out.value = 2


def _consumer(cond, box, out):
    with cond:
        ok = cond.wait_for(lambda: box.value != 0, timeout=20)
        out.value = box.value if ok else -1


def _waiter(ev, out):
    out.value = 1 if ev.wait(20) else 2


def _slow_action():
    time.sleep(0.2)
    shoal.Value("i", 0, name="acted-flag").value = 1


def _barrier_party_sees(b, out, i):
    b.wait(20)
    out[i] = shoal.Value("i", 0, name="acted-flag").value


def _failing_action():
    raise RuntimeError("action failed")


def _expect_broken(b):
    try:
        b.wait(20)
    except (RuntimeError, threading.BrokenBarrierError):
        os._exit(0)
    os._exit(1)


def _barrier_party(b, out, i):
    out[i] = b.wait(20)


class LockTest(unittest.TestCase):
    def test_basic(self):
        lock = shoal.Lock()
        self.assertTrue(lock.acquire())
        self.assertTrue(lock.locked())
        self.assertFalse(lock.owner_died)
        with self.assertRaises(shoal.Deadlock):
            lock.acquire()  # a plain Lock held by this thread: an error, not a hang
        # Without blocking, or with a timeout, False as multiprocessing says.
        self.assertFalse(lock.acquire(False))
        t0 = time.monotonic()
        self.assertFalse(lock.acquire(timeout=0.05))
        self.assertGreaterEqual(time.monotonic() - t0, 0.05)
        lock.release()
        self.assertFalse(lock.locked())
        with self.assertRaises(shoal.NotOwner) as cm:
            lock.release()
        self.assertIsInstance(cm.exception, RuntimeError)
        self.assertIsInstance(cm.exception, ValueError)
        with lock:
            self.assertTrue(lock.locked())
        self.assertFalse(lock.locked())

    def test_held_by_another_process(self):
        lock = shoal.Lock()
        held = shoal.Event()
        p = fork.Process(target=_hold_for, args=(lock, held, 1.0))
        p.start()
        self.assertTrue(held.wait(20))
        self.assertFalse(lock.acquire(False))
        t0 = time.monotonic()
        self.assertFalse(lock.acquire(timeout=0.2))
        self.assertGreaterEqual(time.monotonic() - t0, 0.19)
        self.assertTrue(lock.acquire(timeout=20))  # released when the child is done
        lock.release()
        p.join(20)

    def test_other_thread_cannot_release(self):
        lock = shoal.Lock()
        lock.acquire()
        out = shoal.Value("i")
        t = threading.Thread(target=_try_release, args=(lock, out))
        t.start()
        t.join(10)
        self.assertEqual(out.value, 2)
        lock.release()

    def test_owner_died(self):
        lock = shoal.Lock(name="dies-holding")
        held = shoal.Event()
        p = fork.Process(target=_hold_and_die, args=(lock, held))
        p.start()
        p.join(20)
        self.assertEqual(p.exitcode, -signal.SIGKILL)
        self.assertTrue(held.is_set())
        self.assertTrue(lock.acquire(timeout=10))  # no hang: Python's Lock would
        self.assertTrue(lock.owner_died)
        lock.release()
        self.assertTrue(lock.acquire(timeout=10))
        self.assertFalse(lock.owner_died)  # only the first acquirer is told
        lock.release()

    def test_owner_died_for_every_lock_held(self):
        # Whatever order a holder took and released locks in, and whichever way it took
        # them, the ones it held when killed are marked and the others are free.
        locks = [shoal.Lock(), shoal.Lock(), shoal.Lock(), shoal.Lock(), shoal.RLock()]
        contended = shoal.Lock()
        held = shoal.Event()
        contended.acquire()
        p = fork.Process(target=_shuffle_and_die, args=(locks, contended, held))
        p.start()
        self.assertTrue(held.wait(20))
        time.sleep(0.05)  # let it sleep on the lock
        contended.release()
        p.join(20)
        self.assertEqual(p.exitcode, -signal.SIGKILL)
        for i, lk in enumerate(locks + [contended]):
            self.assertTrue(lk.acquire(timeout=10), i)
            self.assertEqual(lk.owner_died, i in (0, 2, 4, 5), i)
            lk.release()
        # A thread that exits holding locks leaves them marked too.
        def churn():
            for lk in locks + [locks[4]]:
                lk.acquire()
            for lk in (locks[1], locks[3], locks[4], locks[4]):
                lk.release()
        t = threading.Thread(target=churn)
        t.start()
        t.join(20)
        for i, lk in enumerate(locks):
            self.assertTrue(lk.acquire(timeout=10), i)
            self.assertEqual(lk.owner_died, i in (0, 2), i)
            lk.release()

    def test_owner_died_raises_when_asked(self):
        lock = shoal.RLock()
        held = shoal.Event()
        p = fork.Process(target=_hold_and_die, args=(lock, held))
        p.start()
        p.join(20)
        with self.assertRaises(shoal.OwnerDied):
            lock.acquire(timeout=10, raise_owner_died=True)
        self.assertTrue(lock.locked())  # ... and the lock is held by us
        lock.release()

    def test_named_and_pickled(self):
        lock = shoal.Lock(name="named-lock")
        self.assertEqual(lock.name, "named-lock")
        with lock:
            cp = _util.run_py("""
                import shoal
                l = shoal.Lock(name='named-lock', create=False)
                print(l.acquire(timeout=0.1))
            """)
            self.assertEqual(cp.stdout.strip(), "False")
        twin = pickle.loads(pickle.dumps(lock))
        self.assertEqual(twin.name, "named-lock")
        with self.assertRaises(shoal.WrongKind):
            shoal.Semaphore(name="named-lock", create=False)

    def test_interruptible_wait(self):
        lock = shoal.Lock(name="ctrl-c")
        lock.acquire()
        child = _util.start_py("""
            import shoal, sys
            l = shoal.Lock(name='ctrl-c', create=False)
            print('waiting', flush=True)
            try:
                l.acquire()
            except KeyboardInterrupt:
                print('interrupted', flush=True)
        """)
        self.assertEqual(child.stdout.readline().strip(), "waiting")
        time.sleep(0.3)
        child.send_signal(signal.SIGINT)
        out, _ = child.communicate(timeout=10)
        self.assertEqual(out.strip(), "interrupted")
        lock.release()


class RLockTest(unittest.TestCase):
    def test_recursion_and_ownership(self):
        r = shoal.RLock()
        with r:
            with r:
                self.assertTrue(r.locked())
            self.assertTrue(r.locked())
            out = shoal.Value("i")
            p = fork.Process(target=_try_release, args=(r, out))
            p.start()
            p.join(20)
            self.assertEqual(out.value, 2)  # another process cannot release it
        self.assertFalse(r.locked())
        self.assertIn("unlocked", repr(r))


class SemaphoreTest(unittest.TestCase):
    def test_counting(self):
        s = shoal.Semaphore(2)
        self.assertTrue(s.acquire())
        self.assertTrue(s.acquire(False))
        self.assertFalse(s.acquire(False))
        self.assertFalse(s.acquire(timeout=0.05))
        self.assertEqual(s.get_value(), 0)
        s.release(2)
        self.assertEqual(s.get_value(), 2)
        with s:
            self.assertEqual(s.get_value(), 1)
        with self.assertRaises(ValueError):
            shoal.Semaphore(-1)

    def test_bounded(self):
        b = shoal.BoundedSemaphore(1)
        b.acquire()
        b.release()
        with self.assertRaises(shoal.ReleasedTooManyTimes) as cm:
            b.release()
        self.assertIsInstance(cm.exception, ValueError)

    def test_handoff_between_unrelated_processes(self):
        s = shoal.Semaphore(0, name="handoff")
        child = _util.start_py("""
            import shoal
            s = shoal.Semaphore(name='handoff', create=False)
            print(s.acquire(timeout=20), flush=True)
        """)
        time.sleep(0.1)
        s.release()
        out, _ = child.communicate(timeout=30)
        self.assertEqual(out.strip(), "True")


class ConditionTest(unittest.TestCase):
    def test_notify_across_processes(self):
        cond = shoal.Condition()
        box, out = shoal.Value("i", 0), shoal.Value("i", 0)
        p = spawn.Process(target=_consumer, args=(cond, box, out))
        p.start()
        time.sleep(0.2)
        with cond:
            box.value = 42
            cond.notify_all()
        p.join(60)
        self.assertEqual(p.exitcode, 0)
        self.assertEqual(out.value, 42)

    def test_wait_timeout_and_rules(self):
        cond = shoal.Condition(shoal.Lock())
        with cond:
            t0 = time.monotonic()
            self.assertFalse(cond.wait(0.05))
            self.assertGreaterEqual(time.monotonic() - t0, 0.04)
            self.assertFalse(cond.wait_for(lambda: False, timeout=0.05))
        with self.assertRaises(shoal.NotOwner):
            cond.wait(0.01)  # the lock must be held
        with self.assertRaises(TypeError):
            shoal.Condition(threading.Lock())

    def test_rlock_held_twice(self):
        cond = shoal.Condition()
        with cond:
            with cond:
                self.assertFalse(cond.wait(0.01))
                self.assertTrue(cond._lock.locked())
        self.assertFalse(cond._lock.locked())

    def test_named_condition_shares_its_lock(self):
        c1 = shoal.Condition(name="cv")
        c2 = shoal.Condition(name="cv", create=False)
        with c1:
            self.assertTrue(c2._lock.locked())
            self.assertEqual(c2._lock.name, "cv.lock")


    def test_ctrl_c_in_untimed_wait(self):
        cond = shoal.Condition(name="cv-ctrl-c")
        child = _util.start_py("""
            import shoal, threading
            c = shoal.Condition(name='cv-ctrl-c', create=False)
            with c:
                c.acquire()  # held twice: restored to depth 2
                print('waiting', flush=True)
                try:
                    c.wait()
                except KeyboardInterrupt:
                    tid, depth = c._lock._state()
                    held = tid == threading.get_native_id()
                    print('interrupted', held, depth, flush=True)
                c.release()
        """)
        self.assertEqual(child.stdout.readline().strip(), "waiting")
        # A SIGINT that lands while the waiter is not asleep in the kernel (the
        # instants between two sleep slices) is only seen with the next: repeat it.
        out = None
        for _ in range(10):
            time.sleep(0.3)
            child.send_signal(signal.SIGINT)
            try:
                out, _ = child.communicate(timeout=3)
                break
            except subprocess.TimeoutExpired:
                pass
        if out is None:
            child.kill()
            child.communicate()
        self.assertEqual((out or "").strip(), "interrupted True 2")
        self.assertEqual(child.returncode, 0)
        self.assertFalse(cond._lock.locked())

    def test_timed_wait_takes_the_lock_back(self):
        # The timeout bounds the wait for a notify; the wait still returns holding
        # the lock, once the other process lets it go.
        cond = shoal.Condition(shoal.Lock(name="cv-held-lock"), name="cv-held")
        with cond:
            child = _util.start_py("""
                import shoal, time
                lock = shoal.Lock(name='cv-held-lock', create=False)
                print('ready', flush=True)
                with lock:  # taken while the parent waits
                    print('holding', flush=True)
                    time.sleep(1.0)
            """)
            self.assertEqual(child.stdout.readline().strip(), "ready")
            self.assertFalse(cond.wait(0.2))
            tid, _ = cond._lock._state()
            self.assertEqual(tid, threading.get_native_id())
            self.assertTrue(cond._lock.held_here())
        out, _ = child.communicate(timeout=20)
        self.assertEqual(out.strip(), "holding")
        self.assertFalse(cond._lock.locked())

    def test_wait_takes_the_rlock_back_from_a_dead_holder(self):
        # The process that took the lock while we waited is killed holding it: the
        # wait returns (a wake-up) holding the RLock at its depth, owner_died set.
        cond = shoal.Condition(shoal.RLock(name="cv-dead-lock"), name="cv-dead")
        lock = cond._lock
        lock.acquire()
        lock.acquire()
        child = _util.start_py("""
            import shoal, time
            lock = shoal.RLock(name='cv-dead-lock', create=False)
            print('ready', flush=True)
            lock.acquire()  # taken while the parent waits
            print('holding', flush=True)
            time.sleep(60)  # killed here
        """)
        self.assertEqual(child.stdout.readline().strip(), "ready")

        def kill_when_holding():
            child.stdout.readline()
            time.sleep(1.5)  # past the wait's timeout: it waits for the lock now
            child.kill()

        killer = threading.Thread(target=kill_when_holding)
        killer.start()
        try:
            self.assertTrue(cond.wait(1.0))
        finally:
            killer.join()
            child.communicate(timeout=20)
        self.assertTrue(lock.owner_died)
        self.assertEqual(lock._state(), (threading.get_native_id(), 2))
        lock.release()
        self.assertTrue(lock.held_here())  # once more
        lock.release()
        self.assertFalse(lock.held_here())
        self.assertFalse(lock.locked())

    def test_signal_storm_loses_no_notify(self):
        # Waiters whose untimed waits signals keep interrupting, while tickets are
        # handed out one notify(1) each: every waiter still gets its ticket.
        n = 3
        cond = shoal.Condition(name="cv-storm")
        tickets = shoal.Value("i", 0, name="cv-storm-tickets")
        children = [_util.start_py("""
            import signal, shoal
            signal.signal(signal.SIGUSR1, lambda *a: None)
            c = shoal.Condition(name='cv-storm', create=False)
            t = shoal.Value('i', name='cv-storm-tickets', create=False)
            with c:
                print('waiting', flush=True)
                while t.value == 0:
                    c.wait()
                t.value -= 1
            print('got', flush=True)
        """) for _ in range(n)]
        for ch in children:
            self.assertEqual(ch.stdout.readline().strip(), "waiting")
        time.sleep(0.3)
        for _ in range(n):
            for _ in range(20):
                for ch in children:
                    ch.send_signal(signal.SIGUSR1)
                time.sleep(0.002)
            with cond:
                tickets.value += 1
                cond.notify(1)
        try:
            for ch in children:
                out, _ = ch.communicate(timeout=30)
                self.assertEqual(out.strip(), "got")
        finally:
            for ch in children:
                ch.kill()
        self.assertEqual(tickets.value, 0)


class EventTest(unittest.TestCase):
    def test_event(self):
        ev = shoal.Event()
        self.assertFalse(ev.is_set())
        self.assertFalse(ev.wait(0.01))
        out = shoal.Value("i")
        p = fork.Process(target=_waiter, args=(ev, out))
        p.start()
        time.sleep(0.1)
        ev.set()
        p.join(20)
        self.assertEqual(out.value, 1)
        self.assertTrue(ev.is_set())
        ev.clear()
        self.assertFalse(ev.is_set())


class BarrierTest(unittest.TestCase):
    def test_three_parties(self):
        b = shoal.Barrier(3)
        out = shoal.Array("i", [-1, -1, -1])
        procs = [fork.Process(target=_barrier_party, args=(b, out, i)) for i in range(2)]
        for p in procs:
            p.start()
        out[2] = b.wait(20)
        for p in procs:
            p.join(20)
        self.assertEqual(sorted(out[:]), [0, 1, 2])
        self.assertEqual(b.parties, 3)

    def test_timeout_breaks(self):
        b = shoal.Barrier(2)
        with self.assertRaises(threading.BrokenBarrierError):
            b.wait(0.05)
        self.assertTrue(b.broken)
        with self.assertRaises(shoal.BrokenBarrier):
            b.wait(0.05)
        b.reset()
        self.assertFalse(b.broken)
        b.abort()
        self.assertTrue(b.broken)
        with self.assertRaises(ValueError):
            shoal.Barrier(0)

    def test_action_runs_before_any_party_returns(self):
        # The action (in whichever process gets index 0) has run before any party
        # leaves wait(); if it raises, the others see a broken barrier.
        b = shoal.Barrier(3, action=_slow_action, name="acted")
        out = shoal.Array("i", [-1, -1, -1], name="acted-out")
        procs = [fork.Process(target=_barrier_party_sees, args=(b, out, i))
                 for i in range(2)]
        for p in procs:
            p.start()
        _barrier_party_sees(b, out, 2)
        for p in procs:
            p.join(20)
        self.assertEqual(out[:], [1, 1, 1])
        bad = shoal.Barrier(2, action=_failing_action)
        p = fork.Process(target=_expect_broken, args=(bad,))
        p.start()
        with self.assertRaises((RuntimeError, threading.BrokenBarrierError)):
            bad.wait(20)
        p.join(20)
        self.assertEqual(p.exitcode, 0)

    def test_action_runs_once(self):
        ran = []
        b = shoal.Barrier(1, action=lambda: ran.append(1))
        self.assertEqual(b.wait(), 0)
        self.assertEqual(ran, [1])


if __name__ == "__main__":
    unittest.main()
