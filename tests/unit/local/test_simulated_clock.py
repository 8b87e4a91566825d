"""The engine's simulated clock: waits jump instead of passing, threads that wait on each other are not waited for."""

from __future__ import annotations

import math
import threading
import time

from firebreak_local import runtime


def _run_together(clock: runtime.SimulatedClock, *threads: threading.Thread) -> None:
    # Held while they start, as the engine holds it while it starts executions: a starter that does not take part,
    # descheduled between two starts, would otherwise let the clock jump the first one's sleep alone.
    with runtime.simulated_time(clock):
        with clock.holding():
            for thread in threads:
                thread.start()
        for thread in threads:
            thread.join()


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
    threads = [threading.Thread(target=sleeper, args=args) for args in (("a", 30.0), ("b", 5.0, 5.0), ("c", 12.0))]
    _run_together(clock, *threads)

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
    _run_together(clock, threading.Thread(target=waiter), threading.Thread(target=giver))

    # THEN the waiter woke at the signal, and the clock never went on to the pause's bound
    assert woke == [2.0]
    assert clock.elapsed() == 2.0
    # and a pause for a signal already given does not wait at all, outside the clock too
    started = time.perf_counter()
    runtime.SIGNALS.pause(5.0, key)
    assert time.perf_counter() - started < 1.0


ROUNDS = 30  # what the next two guard against is a matter of scheduling: each gets many chances to go wrong


def _woken_by_a_notify_at() -> float:
    """A thread waiting on a condition, and one that notifies it 5 s in and at once sleeps 10 s more: when the waiter
    ran on."""
    clock = runtime.SimulatedClock()
    clock.STALL_SECONDS = 60.0
    condition = threading.Condition()
    told: list[bool] = []
    woke: list[float] = []

    def waiter() -> None:
        with condition:
            while not told:
                condition.wait()
        woke.append(clock.elapsed())

    def notifier() -> None:
        clock.sleep(5.0)
        with condition:
            told.append(True)
            condition.notify()
        clock.sleep(10.0)

    _run_together(clock, threading.Thread(target=waiter), threading.Thread(target=notifier))
    return woke[0]


def _joined_an_ended_thread_at() -> float:
    """A thread that sleeps 5 s and ends, one that joins it, and one that sleeps 20 s: when the joiner ran on."""
    clock = runtime.SimulatedClock()
    clock.STALL_SECONDS = 60.0
    sleeper = threading.Thread(target=clock.sleep, args=(5.0,))
    woke: list[float] = []

    def joiner() -> None:
        sleeper.join()
        woke.append(clock.elapsed())

    _run_together(clock, sleeper, threading.Thread(target=joiner), threading.Thread(target=clock.sleep, args=(20.0,)))
    return woke[0]


def test_a_thread_a_notify_wakes_runs_before_the_clock_moves_on() -> None:
    # GIVEN / WHEN, round after round, a thread notified 5 s in by one that at once sleeps 10 s more
    woke = [_woken_by_a_notify_at() for _ in range(ROUNDS)]

    # THEN the woken thread ran at 5 s every time: the clock never went on to 15 s before it had
    assert woke == [5.0] * ROUNDS


def test_a_thread_joining_one_that_ends_runs_before_the_clock_moves_on() -> None:
    # GIVEN / WHEN, round after round, a thread joining one that ends 5 s in, while a third sleeps 20 s
    woke = [_joined_an_ended_thread_at() for _ in range(ROUNDS)]

    # THEN the joiner ran on at 5 s every time, before the clock jumped to the third thread's 20 s
    assert woke == [5.0] * ROUNDS


def test_an_endless_sleep_lasts_until_its_wake_and_the_clock_never_jumps_to_it() -> None:
    # GIVEN a thread that sleeps without a bound until woken (the stream poller while no record comes), and one that
    # sleeps 3 s and then wakes it
    clock = runtime.SimulatedClock()
    clock.STALL_SECONDS = 60.0
    key = "test-endless-sleep-woken-3s-in"
    woke: list[float] = []

    def endless() -> None:
        clock.sleep(math.inf, wake=key)
        woke.append(clock.elapsed())

    def waker() -> None:
        clock.sleep(3.0)
        clock.wake(key)

    # WHEN both run on the simulated clock
    _run_together(clock, threading.Thread(target=endless), threading.Thread(target=waker))

    # THEN the endless sleep ended at the wake, and the clock moved by the finite sleep alone
    assert woke == [3.0]
    assert clock.elapsed() == 3.0
    assert clock.jumps == 1
    # AND an endless sleep with nothing to end it is refused, rather than parking its thread for good
    refused: list[ValueError] = []

    def unbounded() -> None:
        try:
            clock.sleep(math.inf)
        except ValueError as error:
            refused.append(error)

    _run_together(clock, threading.Thread(target=unbounded))
    assert len(refused) == 1
