"""Turns on a node's cores (agents/turns.py): one holder per core, turns go round, a dead holder frees its core."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading

import pytest

from agents import turns
from agents.turns import BY_THE_DATA, IMAGE_TURN_MS, VECTOR_TURN_MS, CoreTurns, turn_seconds
from experiments.config import RunConfig


def test_one_core_is_held_by_one_player_at_a_time_and_turns_go_round(tmp_path):
    events, lock = [], threading.Lock()

    def player(name: str) -> None:
        turns = CoreTurns("run", 1, 1e-9, directory=str(tmp_path))
        with turns:
            for _ in range(20):
                with lock:
                    events.append((name, "in"))
                with lock:
                    events.append((name, "out"))
                turns.between()  # every turn is over at once: the core goes to whoever waits
        turns.close()

    threads = [threading.Thread(target=player, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    # Between a player's "in" and its "out" the other never comes in: the one core is never shared.
    for (first, kind), (second, _) in zip(events, events[1:]):
        if kind == "in":
            assert first == second
    holders = [name for name, kind in events if kind == "in"]
    assert holders.count("a") == holders.count("b") == 20
    switches = sum(1 for x, y in zip(holders, holders[1:]) if x != y)
    assert switches > 1  # the core changed hands between turns, not only when one player finished


def test_two_cores_let_two_players_work_at_once(tmp_path):
    first, second = (CoreTurns("run", 2, 1.0, directory=str(tmp_path)) for _ in range(2))
    with first, second:  # the second takes the other core without waiting
        assert first.held is not None and second.held is not None
        assert os.fstat(first.held).st_ino != os.fstat(second.held).st_ino
    first.close()
    second.close()


def test_a_player_that_dies_holding_a_core_frees_it(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from agents.turns import CoreTurns; "
         f"t = CoreTurns('run', 1, 1.0, directory={str(tmp_path)!r}); t.__enter__(); print('held', flush=True); "
         "time.sleep(600)"],
        stdout=subprocess.PIPE, text=True, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        assert holder.stdout.readline().strip() == "held"
        slot = os.open(os.path.join(turns.folder("run", str(tmp_path)), "core-0.lock"), os.O_RDWR)
        with pytest.raises(BlockingIOError):
            fcntl.flock(slot, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        holder.kill()
        holder.wait()
    fcntl.flock(slot, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the OS released the dead holder's lock
    os.close(slot)


def test_a_player_whose_turn_is_over_takes_a_free_core_before_the_one_it_gave_up(tmp_path):
    player = CoreTurns("run", 2, 1e-9, directory=str(tmp_path))
    with player:
        for _ in range(10):  # whichever slot it holds, the other is free: it moves there every time
            given = os.fstat(player.held).st_ino
            player.between()
            assert os.fstat(player.held).st_ino != given
    assert player.turns == 11
    player.close()


def waiting(turns: CoreTurns) -> tuple[threading.Thread, threading.Event]:
    """A player asking `turns` for a core in a thread of its own (a daemon: a failed test leaves none hanging);
    the event is set once it holds one."""
    got = threading.Event()

    def wait() -> None:
        with turns:
            got.set()

    thread = threading.Thread(target=wait, daemon=True)
    thread.start()
    return thread, got


def test_a_core_given_up_at_a_phases_end_goes_to_a_waiter_whichever_core_it_is(tmp_path):
    """Two cores, one held throughout, the other given up at the end of a phase: the player waiting gets it at once,
    every time (one asleep on the held core's lock, as before the bell, waited half the times for good)."""
    held, other = (CoreTurns("run", 2, 1.0, directory=str(tmp_path)) for _ in range(2))
    try:
        with held:
            for _ in range(8):
                other.__enter__()
                waiter = CoreTurns("run", 2, 1.0, directory=str(tmp_path))
                thread, got = waiting(waiter)
                assert not got.wait(0.2)  # both cores are taken
                other.__exit__()
                assert got.wait(10), "the core given up stood idle"
                thread.join(10)
                waiter.close()
    finally:
        held.close()
        other.close()


def test_rings_nobody_waited_for_do_not_wake_a_waiter(tmp_path):
    """Cores given up while nobody waits leave rings on the bell; the next waiter drains them before it sleeps,
    and wakes once: when a core is given up for it."""
    first, second, waiter = (CoreTurns("run", 2, 1.0, directory=str(tmp_path)) for _ in range(3))
    try:
        for _ in range(1000):
            with first:
                pass
        first.__enter__()
        second.__enter__()
        thread, got = waiting(waiter)
        assert not got.wait(0.5)
        second.__exit__()
        assert got.wait(10)
        thread.join(10)
        assert waiter.wakes <= 1, waiter.wakes  # not one per stale ring
    finally:
        for player in (first, second, waiter):
            player.close()


def test_a_closed_turn_closes_nothing_more_when_closed_again(tmp_path):
    turns = CoreTurns("run", 1, 1.0, directory=str(tmp_path))
    turns.close()
    other = os.open(os.devnull, os.O_RDONLY)  # may be given the number the bell had
    try:
        turns.close()
        os.fstat(other)  # still open
    finally:
        os.close(other)


def test_turns_refuse_what_cannot_be_a_turn(tmp_path):
    with pytest.raises(ValueError, match="at least one core; got 0"):
        CoreTurns("run", 0, 0.05, directory=str(tmp_path))
    with pytest.raises(ValueError, match="positive time; got 0"):
        CoreTurns("run", 1, 0, directory=str(tmp_path))
    turns = CoreTurns("run", 1, 0.05, directory=str(tmp_path))
    with turns:
        with pytest.raises(RuntimeError, match="do not nest"):
            turns.__enter__()
    turns.close()
    with pytest.raises(ValueError, match=r"turn_ms must be -1 \(by the data\) or between 0 and 10000; got -2"):
        RunConfig(turn_ms=-2)


def test_a_turn_by_the_data_is_longer_on_images_than_on_vectors_and_a_given_one_is_kept():
    assert RunConfig().turn_ms == BY_THE_DATA  # the default leaves it to the data
    assert turn_seconds(BY_THE_DATA, (1, 28, 28)) == IMAGE_TURN_MS / 1000 > turn_seconds(BY_THE_DATA, (2,))
    assert turn_seconds(BY_THE_DATA, (2,)) == VECTOR_TURN_MS / 1000
    assert turn_seconds(200, (1, 28, 28)) == turn_seconds(200, (2,)) == 0.2
