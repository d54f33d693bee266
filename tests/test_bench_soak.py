"""The soak benchmark (issue 14 point 2): loops per minute, ms per step and resident memory, first minutes against
last, from synthetic records and samples; the meter's memory samples; the command end to end on a tiny budget."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from experiments.bench import common, results, soak
from experiments.bench.probe import MachineProbe
from tests.test_bench_quality import bench  # noqa: F401 (a fixture: the command line, writing under tmp_path)

T0 = 1_000_000.0


def _loop(player: str, start: float, seconds: float, steps: int = 100, ms: float | None = 10.0) -> dict:
    """A recorded individual whose loop ran from `start` for `seconds`: train, then fight."""
    return {"player": player, "trained_steps": steps, "step_ms": ms, "step_cpu_ms": None if ms is None else ms / 2,
            "timeline": {"train": [start, start + 0.8 * seconds], "fight": [start + 0.8 * seconds, start + seconds]}}


def _run(minutes: int, loop: float, slower_from: float | None = None, slow: float = 1.0) -> list[dict]:
    """Two players looping back to back for `minutes` and one loop more (their last, cut by the deadline);
    from `slower_from` seconds on, loops take `slow` times as long, at `slow` times the ms per step."""
    docs = []
    for index, player in enumerate(("player-0", "player-1")):
        at = T0 + index  # player-1 starts a second later
        while at < T0 + minutes * 60:
            factor = slow if slower_from is not None and at - T0 >= slower_from else 1.0
            docs.append(_loop(player, at, loop * factor, ms=10.0 * factor))
            at += loop * factor
        docs.append(_loop(player, at, 0.5, steps=3))
    return docs


def test_the_steady_window_runs_from_the_first_loop_to_the_first_start_of_a_last_loop():
    docs = [_loop("a", T0, 10), _loop("a", T0 + 10, 10), _loop("b", T0 + 3, 4), _loop("b", T0 + 7, 20)]
    assert soak.window(docs) == (T0, T0 + 7)
    assert soak.window([{"player": "a", "timeline": {}}]) is None


def test_loops_are_counted_in_the_whole_minute_they_ended():
    docs = [_loop("a", T0 - 5, 4), _loop("a", T0, 59.5), _loop("a", T0 + 59.5, 1), _loop("b", T0 + 100, 15),
            _loop("b", T0 + 115, 60)]
    minutes = soak.per_minute(docs, T0, T0 + 179)  # 2 whole minutes: the first loop ended before them, the last after
    assert [[d["timeline"]["train"][0] - T0 for d in m] for m in minutes] == [[0], [59.5, 100]]
    assert soak.per_minute(docs, T0, T0 + 59) == []


def test_ms_per_step_weights_each_loop_by_its_steps():
    docs = [_loop("a", 0, 1, steps=100, ms=10.0), _loop("a", 1, 1, steps=300, ms=20.0),
            _loop("a", 2, 1, steps=0, ms=None)]
    assert common.train_ms(docs) == pytest.approx((100 * 10 + 300 * 20) / 400)
    assert common.train_ms(docs[2:]) is None and common.train_ms([]) is None


def test_resident_memory_is_the_mean_of_an_actors_samples_in_a_span_in_mb():
    mb = 2**20
    memory = [(T0, "Player", 1, 100 * mb, 60 * mb), (T0, "Player", 2, 300 * mb, 100 * mb),
              (T0, "Registry", 3, 50 * mb, 20 * mb), (T0 + 1, "Player", 1, 0, 0), (T0 + 5, "Player", 1, 900 * mb, 9),
              (T0, "IDLE", 4, 10 * mb, 1)]
    assert soak.resident(memory, "Player", T0, T0 + 5) == pytest.approx(200)  # the zero (a zombie) is no sample
    assert soak.resident(memory, "Player", T0, T0 + 5, soak.PRIVATE) == pytest.approx(80)
    assert soak.resident(memory, "Registry", T0, T0 + 5) == pytest.approx(50)
    assert soak.resident(memory, "Registry", T0 + 1, T0 + 5) is None


def _memory(minutes: int, player_mb: float, registry_mb: tuple[float, float]) -> list[tuple]:
    """Samples every 5 s: two flat players, and a registry growing linearly between the two values."""
    samples = []
    for at in range(0, minutes * 60, 5):
        grown = registry_mb[0] + (registry_mb[1] - registry_mb[0]) * at / (minutes * 60)
        samples += [(T0 + at, "Player", 11, player_mb * 2**20, player_mb * 2**19),
                    (T0 + at, "Player", 12, player_mb * 2**20, player_mb * 2**19),
                    (T0 + at, "Registry", 13, grown * 2**20, (grown - 50) * 2**20)]
    return samples


def test_a_flat_run_meets_every_target_and_a_slowing_leaking_one_says_by_how_much():
    common_ = {"dataset": "ring8", "players": 2}
    rows, series = soak.rows_of(_run(8, 6.0), _memory(8, 400, (100, 100)), common_)
    assert [r["measure"] for r in rows] == [
        "loops per minute, population", "train phase ms per step", "train phase CPU ms per step",
        "loops per minute at the first minutes' train phase CPU ms per step",
        "resident memory (RSS) per player, MB, mean over players", "resident memory (RSS) of the registry, MB",
        "private memory (RSS less shared pages) per player, MB, mean over players",
        "private memory (RSS less shared pages) of the registry, MB",
        "machine probe, CPU ms per step of a fixed GAN", "loops per minute at the machine probe's first speed"]
    assert [r["first"] for r in rows[-2:]] == ["-", "20.0"] and rows[-1]["last"] == "-"  # no probe given
    # The last loops start at 480 s: whole minutes 0-7, each player ending 10 loops a minute, 9 in minute 0.
    assert series["loops"][1:] == [20] * 7 and series["player_mb"] == [400] * 8 and series["registry_mb"] == [100] * 8
    assert series["player_private_mb"] == [200] * 8 and series["registry_private_mb"] == [50] * 8
    for row in rows:
        assert row["minutes"] == "1–2 vs 6–7" and row["dataset"] == "ring8" and row["players"] == 2
    for row in rows[:-2]:  # the probe's rows have no probe to compare
        assert row["change"] == "+0.0 %" and row["target met"] in ("yes", "-")
    assert (rows[0]["first"], rows[0]["last"], rows[0]["target"]) == ("20.0", "20.0", soak.WITHIN)
    assert (rows[1]["first"], rows[1]["target met"], rows[2]["first"], rows[2]["target met"]) == ("10.00", "-", "5.00", "-")
    assert series["player_cpu_s"] == series["other_cpu_s"] == [None] * 8  # no meter given
    assert (rows[4]["first"], rows[4]["target"], rows[5]["target met"]) == ("400", soak.GROWTH, "yes")
    assert (rows[6]["first"], rows[7]["first"], rows[7]["target met"]) == ("200", "50", "yes")

    # From minute 4 on, loops take 1.25 times as long at 1.25 times the ms per step: a dearer genome's cost.
    rows, series = soak.rows_of(_run(8, 6.0, slower_from=240, slow=1.25), _memory(8, 400, (100, 200)), common_)
    assert series["registry_mb"] == sorted(series["registry_mb"]) and series["registry_mb"][-1] > 180  # minute by minute
    assert (rows[0]["last"], rows[0]["change"], rows[0]["target met"]) == ("16.0", "-20.0 %", "no (-20.0 %)")
    assert (rows[1]["last"], rows[1]["change"]) == ("12.50", "+25.0 %")
    # At the first minutes' cost per step only the train phase (0.8 of a loop) shrinks back: 16 / (0.2 + 0.8 / 1.25)
    # loops a minute, what the rest of the loop, as dear as the genome here, still costs.
    assert (rows[3]["first"], rows[3]["last"], rows[3]["target"]) == ("20.0", f"{16 / 0.84:.1f}", "-")
    assert rows[4]["target met"] == "yes" and rows[5]["target met"].startswith("no (+")
    assert rows[6]["target met"] == "yes" and rows[7]["target met"].startswith("no (+")
    assert float(rows[7]["change"].split()[0]) > float(rows[5]["change"].split()[0])  # the same MB, of less


def test_loops_at_the_first_cost_shrink_only_the_train_phases_by_the_cpu_ratio():
    # Two loops of 10 s, train 6 and 2 s of them: at half the CPU a step, 4 s shorter in 20, so 1.25 times the loops.
    docs = [{"timeline": {"train": [T0, T0 + 6], "fight": [T0 + 6, T0 + 10]}},
            {"timeline": {"train": [T0 + 10, T0 + 12], "fight": [T0 + 12, T0 + 20]}},
            {"timeline": {}}]  # a record without a timeline counts for nothing
    assert soak.at_first_cost(8.0, docs, 2.0, 4.0) == pytest.approx(8.0 * 20 / 16)
    assert soak.at_first_cost(8.0, docs, 4.0, 4.0) == pytest.approx(8.0)  # the same cost: the count as it was
    assert soak.at_first_cost(8.0, docs, 6.0, 4.0) == pytest.approx(8.0 * 20 / 24)  # cheaper later: fewer
    fights_only = [{"timeline": {"fight": [T0, T0 + 10]}}]
    assert soak.at_first_cost(8.0, fights_only, 2.0, 4.0) == pytest.approx(8.0)  # nothing trained to rescale
    for loops, found, first, last in ((None, docs, 2.0, 4.0), (8.0, docs, None, 4.0), (8.0, docs, 2.0, 0.0),
                                      (8.0, [], 2.0, 4.0)):
        assert soak.at_first_cost(loops, found, first, last) is None


def test_a_machine_that_slows_as_much_as_the_loops_leaves_the_pace_flat_at_its_first_speed():
    # From minute 4 on, loops take 1.25 times as long, and so does the probe's fixed GAN: the machine slowed.
    probes = [(T0 + at, 30.0, 8.0 * (1.25 if at >= 240 else 1.0)) for at in range(0, 8 * 60, 30)]
    rows, series = soak.rows_of(_run(8, 6.0, slower_from=240, slow=1.25), _memory(8, 400, (100, 100)), {}, None,
                                probes)
    assert rows[0]["target met"] == "no (-20.0 %)"  # as counted
    assert (rows[-2]["first"], rows[-2]["last"], rows[-2]["change"]) == ("8.00", "10.00", "+25.0 %")
    assert (rows[-1]["first"], rows[-1]["last"], rows[-1]["target met"]) == ("20.0", "20.0", "yes")
    assert series["probe_cpu_ms"] == [8.0] * 4 + [10.0] * 4
    # each player's CPU ms per step, five minutes at a time: minutes 0-4 hold 5.0 then 6.25 from minute 4 on
    assert series["player-0_cpu_ms"][1] == series["player-1_cpu_ms"][1] == pytest.approx(6.25)
    assert 5.0 < series["player-0_cpu_ms"][0] < 6.25
    # A machine that kept its speed: the slowdown is the run's, at the probe's speed too.
    steady = [(at, wall, 8.0) for at, wall, _ in probes]
    rows, _ = soak.rows_of(_run(8, 6.0, slower_from=240, slow=1.25), _memory(8, 400, (100, 100)), {}, None, steady)
    assert rows[-1]["target met"] == "no (-20.0 %)"


@pytest.mark.slow  # fresh interpreters, each importing torch
def test_the_machine_probe_times_a_fixed_gan_again_and_again_until_it_is_left():
    with MachineProbe(every=0.05) as probe:
        deadline = time.time() + 120
        while len(probe.read()) < 2:
            assert time.time() < deadline, "no two probes in 120 s"
            time.sleep(0.1)
    assert len(probe.samples) >= 2 and probe.samples[0][0] < probe.samples[1][0]
    assert all(wall > 0 and cpu > 0 for _, wall, cpu in probe.samples)


def test_the_cpu_of_the_players_and_of_the_rest_is_given_minute_by_minute():
    def used(players: bool, start: float, end: float) -> float:  # players 100 CPU-s a minute; the rest grows
        return (end - start) / 60 * (100 if players else 5 + (start - T0) / 60)

    _, series = soak.rows_of(_run(8, 6.0), _memory(8, 400, (100, 100)), {}, used)
    assert series["player_cpu_s"] == [100] * 8 and series["other_cpu_s"] == [5, 6, 7, 8, 9, 10, 11, 12]


def test_a_faster_end_is_not_flat_either_and_less_memory_is():
    rows, _ = soak.rows_of(_run(8, 6.0, slower_from=240, slow=0.8), _memory(8, 400, (200, 100)), {})
    assert rows[0]["target met"].startswith("no (+") and rows[5]["target met"] == rows[7]["target met"] == "yes"


def test_a_run_too_short_to_compare_gives_the_rows_without_figures():
    for docs in (_run(4, 6.0), []):
        rows, series = soak.rows_of(docs, _memory(4, 400, (100, 100)), {"seconds": 240})
        assert len(rows) == 10 and all(r["first"] == r["last"] == r["target met"] == r["minutes"] == "-"
                                      for r in rows)
        assert all(r["seconds"] == 240 for r in rows)
    assert len(series["loops"]) == 0


def test_the_meter_samples_the_resident_memory_of_ray_workers_by_their_actor():
    hold = "import time\nblock = bytearray(64 * 2**20)\ntime.sleep(0.6)"
    with common.CpuMeter(every=0.1) as meter:
        # Command lines as Ray gives an actor's process and a plain process: only the first is sampled.
        subprocess.run(["ray::Registry.report", "-c", hold], executable=sys.executable, check=True)
        subprocess.run([sys.executable, "-c", hold], check=True)
    names = {sample[1] for sample in meter.memory}
    assert names == {"Registry"}
    assert max(rss for *_, rss, _ in meter.memory) > 64 * 2**20
    assert max(private for *_, private in meter.memory) > 64 * 2**20  # the block is its own, not shared
    assert all(private < rss for *_, rss, private in meter.memory if rss)


def test_the_prose_names_the_codes_numbers():
    prose = " ".join(results.sections()["soak"].split())
    assert soak.WITHIN in prose and soak.GROWTH in prose
    assert f"minutes {soak.SKIP}–{soak.SKIP + soak.SPAN - 1}" in prose
    assert f"the last {soak.SPAN} whole minutes" in prose and f"fewer than {soak.SKIP + 2 * soak.SPAN} whole" in prose


@pytest.mark.slow
def test_soak_runs_end_to_end(bench):  # noqa: F811
    """Which rows come, in which order, and which processes were sampled: 4 s hold no whole minute to compare."""
    result = bench("soak", "--dataset", "ring8", "--seconds", "4", "--players", "2", "--cpus", "2")
    rows = result["rows"]
    assert [r["measure"] for r in rows] == [
        "loops per minute, population", "train phase ms per step", "train phase CPU ms per step",
        "loops per minute at the first minutes' train phase CPU ms per step",
        "resident memory (RSS) per player, MB, mean over players", "resident memory (RSS) of the registry, MB",
        "private memory (RSS less shared pages) per player, MB, mean over players",
        "private memory (RSS less shared pages) of the registry, MB",
        "machine probe, CPU ms per step of a fixed GAN", "loops per minute at the machine probe's first speed"]
    assert "the machine probe's CPU ms per step in each: -;" in result["notes"]  # 4 s hold no whole minute
    for row in rows:
        assert (row["dataset"], row["players"], row["cpus"], row["seconds"]) == ("ring8", 2, 2, 4), row
    assert "processes sampled: 2 players', 1 registry's." in result["notes"]
    assert int(result["notes"].split(": ")[1].split(" individuals")[0]) >= 2
