"""The engine's simulated clock: waits jump instead of passing, threads that wait on each other are not waited for."""

from __future__ import annotations

import threading
import time

from firebreak_local import runtime


def test_parallel_sleeps_take_the_longest_of_them_in_simulated_time_and_no_real_time() -> None:
    # GIVEN the simulated clock running, and three threads that sleep 30 s, 5 s then 5 s, and 12 s
    clock = runtime.SimulatedClock()
    # A loaded machine may keep a thread from reaching its sleep for seconds; no stall jump may reorder them here.
    clock.STALL_SECONDS = 60.0
    woke: list[tuple[str, float]] = []

    def sleeper(name: str, *waits: float) -> None:
        for seconds in waits:
            runtime.clock().sleep(seconds)
        woke.append((name, clock.elapsed()))

    started = time.perf_counter()
    with runtime.simulated_time(clock):
        threads = [threading.Thread(target=sleeper, args=args) for args in (("a", 30.0), ("b", 5.0, 5.0), ("c", 12.0))]
        # Held while they start, as the engine holds it while it starts executions: a starter that does not take
        # part, descheduled between two starts, would otherwise let the clock jump the first one's sleep alone.
        with clock.holding():
            for thread in threads:
                thread.start()
        for thread in threads:
            thread.join()

    # WHEN / THEN each woke at its own simulated moment, in order, the whole taking 30 simulated seconds
    assert woke == [("b", 10.0), ("c", 12.0), ("a", 30.0)]
    assert clock.elapsed() == 30.0
    assert time.perf_counter() - started < 5.0


def test_a_thread_waiting_for_another_does_not_hold_the_clock_up() -> None:
    # GIVEN a thread that waits (Event.wait, no timeout) for a second one, which sleeps 8 s first
    clock = runtime.SimulatedClock()
    ready = threading.Event()
    seen: list[float] = []

    def waiter() -> None:
        ready.wait()
        seen.append(clock.elapsed())

    def setter() -> None:
        runtime.clock().sleep(8.0)
        ready.set()

    # WHEN both run on the simulated clock
    with runtime.simulated_time(clock):
        threads = [threading.Thread(target=waiter), threading.Thread(target=setter)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    # THEN the waiter, blocked, let the clock jump, and saw the event 8 s in; no stall was needed to get there
    assert seen == [8.0]
    assert clock.stalls == 0


def test_the_clock_reads_simulated_time_and_threads_outside_it_sleep_for_real_capped() -> None:
    # GIVEN the simulated clock running
    clock = runtime.SimulatedClock(cap=0.01)
    with runtime.simulated_time(clock):
        before = runtime.clock().monotonic()

        # WHEN the engine's own thread (not started on the clock) sleeps a minute
        started = time.perf_counter()
        runtime.clock().sleep(60.0)

        # THEN it slept for real, cut to the cap, and the simulated time did not move for it
        assert time.perf_counter() - started < 1.0
        assert runtime.clock().monotonic() == before
    # AND outside the block the waiting code sees the time module again
    assert runtime.clock() is time


def test_a_pause_for_a_signal_ends_when_the_signal_is_given_not_at_its_bound() -> None:
    # GIVEN a thread pausing up to 30 s for a signal (a parent for its child's end), and one that gives it 2 s in
    clock = runtime.SimulatedClock()
    clock.STALL_SECONDS = 60.0
    key = "test-signal-given-2s-in"
    woke: list[float] = []

    def waiter() -> None:
        runtime.SIGNALS.pause(30.0, key)
        woke.append(clock.elapsed())

    def giver() -> None:
        runtime.clock().sleep(2.0)
        runtime.SIGNALS.give(key)

    # WHEN both run on the simulated clock
    with runtime.simulated_time(clock):
        threads = [threading.Thread(target=waiter), threading.Thread(target=giver)]
        with clock.holding():  # or the waiter's 30 s could be jumped before the giver starts
            for thread in threads:
                thread.start()
        for thread in threads:
            thread.join()

    # THEN the waiter woke at the signal, and the clock never went on to the pause's bound
    assert woke == [2.0]
    assert clock.elapsed() == 2.0
    # and a pause for a signal already given does not wait at all, outside the clock too
    started = time.perf_counter()
    runtime.SIGNALS.pause(5.0, key)
    assert time.perf_counter() - started < 1.0
