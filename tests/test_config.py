"""The run configuration: defaults, TOML file, flags, and refusals that name the culprit."""

from __future__ import annotations

import dataclasses

import pytest

from arena.config import ArenaConfig
from genome.genes import is_image
from experiments.config import RunConfig, field_docs, load_config
from genome.operators import MutationConfig


def write(tmp_path, text: str):
    path = tmp_path / "run.toml"
    path.write_text(text)
    return path


def test_defaults():
    cfg = load_config()
    assert cfg == RunConfig()
    assert cfg.players == 4
    assert cfg.dataset == "ring8"
    assert cfg.budget_seconds == 60.0
    assert cfg.seed == 0
    assert cfg.run_id is None and cfg.mongo_uri is None and cfg.address is None
    assert cfg.out == "runs" and cfg.mongo_db == "arena"
    assert cfg.arena == ArenaConfig()
    assert cfg.mutation == MutationConfig()
    assert load_config(None, {}) == cfg


def test_empty_file_gives_defaults(tmp_path):
    assert load_config(write(tmp_path, "")) == RunConfig()


def test_toml_overrides_defaults(tmp_path):
    path = write(tmp_path, """
players = 3
dataset = "grid25"
budget_seconds = 5
run_id = "exp-1_a"

[arena]
opponents = 2
steps = 10

[mutation]
p_add_layer = 0.5
max_width = 64
min_lr = 1e-4
""")
    cfg = load_config(path)
    assert cfg.players == 3
    assert cfg.dataset == "grid25"
    assert cfg.budget_seconds == 5.0 and isinstance(cfg.budget_seconds, float)
    assert cfg.run_id == "exp-1_a"
    assert cfg.arena == ArenaConfig(opponents=2, steps=10)
    assert cfg.mutation == MutationConfig(p_add_layer=0.5, max_width=64, min_lr=1e-4)
    assert cfg.seed == 0 and cfg.out == "runs"  # untouched keys keep their defaults
    assert cfg.arena.duel_samples == ArenaConfig().duel_samples
    assert cfg.mutation.p_width == MutationConfig().p_width


def test_flags_override_toml(tmp_path):
    path = write(tmp_path, 'players = 3\nseed = 5\ndataset = "grid25"\n')
    cfg = load_config(path, {"players": 7, "budget_seconds": 2.5})
    assert cfg.players == 7  # flag beats file
    assert cfg.seed == 5  # file beats default
    assert cfg.dataset == "grid25"
    assert cfg.budget_seconds == 2.5  # flag beats default


def test_flags_alone():
    cfg = load_config(None, {"dataset": "grid25", "run_id": "r1"})
    assert cfg.dataset == "grid25" and cfg.run_id == "r1"


def test_accepted_path_as_string(tmp_path):
    path = write(tmp_path, "players = 2\n")
    assert load_config(str(path)).players == 2


@pytest.mark.parametrize("text, key", [
    ("bogus = 1\n", "bogus"),
    ("[mutation]\np_bogus = 0.1\n", "mutation.p_bogus"),
    ("[arena]\nrounds = 3\n", "arena.rounds"),
    ("[extra]\nx = 1\n", "extra"),
])
def test_unknown_keys_are_named(tmp_path, text, key):
    with pytest.raises(ValueError, match="unknown") as err:
        load_config(write(tmp_path, text))
    assert repr(key) in str(err.value)


def test_unknown_flag_is_named():
    with pytest.raises(ValueError, match="'colour'"):
        load_config(None, {"colour": "blue"})


@pytest.mark.parametrize("text, field", [
    ("players = 'four'\n", "players"),
    ("players = 2.5\n", "players"),
    ("players = true\n", "players"),
    ("budget_seconds = 'long'\n", "budget_seconds"),
    ("dataset = 3\n", "dataset"),
    ("run_id = 12\n", "run_id"),
    ("seed = 1.0\n", "seed"),
    ("[mutation]\nmax_width = 'wide'\n", "mutation.max_width"),
    ("[mutation]\np_width = true\n", "mutation.p_width"),
    ("[mutation]\nmin_layers = 1.5\n", "mutation.min_layers"),
    ("[arena]\nsteps = 1.5\n", "arena.steps"),
    ("[arena]\nopponents = '3'\n", "arena.opponents"),
    ("mutation = 3\n", "mutation"),
])
def test_wrong_types_are_named(tmp_path, text, field):
    with pytest.raises(ValueError) as err:
        load_config(write(tmp_path, text))
    assert str(err.value).startswith(field), str(err.value)


@pytest.mark.parametrize("text, field", [
    ("players = 0\n", "players"),
    ("players = -2\n", "players"),
    ("budget_seconds = -1\n", "budget_seconds"),
    ("budget_seconds = 0\n", "budget_seconds"),
    ("seed = -1\n", "seed"),
    ("run_id = 'a/b'\n", "run_id"),
    ("run_id = '../up'\n", "run_id"),
    ("run_id = ''\n", "run_id"),
    ("dataset = 'nope'\n", "dataset 'nope'"),
    ("mongo_db = 'a.b'\n", "mongo_db"),
    ("out = ''\n", "out"),
    ("cpus_per_player = 0\n", "cpus_per_player"),
    ("keep_checkpoints = -1\n", "keep_checkpoints"),
    ("keep_checkpoints = 1\n", "keep_checkpoints"),
    ("keep_every = 0\n", "keep_every"),
    ("[mutation]\np_add_layer = 2\n", "mutation.p_add_layer"),
    ("[mutation]\np_crossover = -0.1\n", "mutation.p_crossover"),
    ("[mutation]\nmin_width = 64\nmax_width = 32\n", "mutation.min_width"),
    ("[mutation]\nmin_layers = 0\n", "mutation.min_layers"),
    ("[mutation]\nmin_lr = 0.1\nmax_lr = 0.01\n", "mutation.min_lr"),
    ("[mutation]\nmax_lr = 1.5\n", "mutation.max_lr"),
    ("[mutation]\nsmall_sigma = 0\n", "mutation.small_sigma"),
    ("[arena]\nopponents = 0\n", "arena.opponents"),
    ("[arena]\ntournament_size = -1\n", "arena.tournament_size"),
])
def test_out_of_range_values_are_named(tmp_path, text, field):
    with pytest.raises(ValueError) as err:
        load_config(write(tmp_path, text))
    assert field in str(err.value), str(err.value)


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_non_finite_small_sigma_is_refused(tmp_path, value):
    with pytest.raises(ValueError, match="mutation.small_sigma"):
        load_config(write(tmp_path, f"[mutation]\nsmall_sigma = {value}\n"))


def test_out_of_range_flag_is_named(tmp_path):
    with pytest.raises(ValueError, match="players"):
        load_config(write(tmp_path, "players = 3\n"), {"players": 0})


def test_nested_error_names_section_once():
    with pytest.raises(ValueError) as err:
        load_config(None, {"mutation": {"p_add_layer": 2}})
    message = str(err.value)
    assert message.startswith("mutation.p_add_layer")
    assert "mutation.mutation." not in message


def test_invalid_toml(tmp_path):
    path = write(tmp_path, "players = = 3\n[unclosed\n")
    with pytest.raises(ValueError, match="TOML") as err:
        load_config(path)
    assert str(path) in str(err.value)


def test_missing_file(tmp_path):
    path = tmp_path / "absent.toml"
    with pytest.raises(ValueError, match="not found") as err:
        load_config(path)
    assert "absent.toml" in str(err.value)


def test_to_dict_is_nested_plain_data(tmp_path):
    cfg = load_config(write(tmp_path, "[mutation]\nmax_width = 64\n"))
    data = cfg.to_dict()
    assert data["mutation"]["max_width"] == 64
    assert data["arena"]["opponents"] == ArenaConfig().opponents
    assert data["players"] == 4


def test_set_items_go_over_the_file_and_under_the_flags(tmp_path):
    path = write(tmp_path, "players = 3\nseed = 2\n[arena]\nsteps = 10\nopponents = 2\n")
    cfg = load_config(path, {"players": 5}, ["arena.steps=20", "players=4", "seed=7", "mutation.adapt=true",
                                             "dataset=grid25", "arena.matchmaking='all'"])
    assert cfg.players == 5  # the flag
    assert cfg.seed == 7 and cfg.arena.steps == 20 and cfg.dataset == "grid25" and cfg.arena.matchmaking == "all"
    assert cfg.arena.opponents == 2  # the file's, in the table --set wrote into
    assert cfg.mutation.adapt is True


@pytest.mark.parametrize("item, named", [
    ("steps", "'steps'"), ("=3", "'=3'"), ("arena.bogus=1", "'arena.bogus'"), ("arena.steps=x", "arena.steps"),
    ("arena.steps=1.5", "arena.steps"), ("arena.opponents=0", "arena.opponents"), ("seed.x=1", "seed"),
    ("mutation.adapt=maybe", "mutation.adapt"), ("arena=3", "arena"),
])
def test_bad_set_items_are_named(item, named):
    with pytest.raises(ValueError) as err:
        load_config(None, None, [item])
    assert named in str(err.value), str(err.value)


def test_a_set_into_a_value_of_the_file_is_refused(tmp_path):
    with pytest.raises(ValueError, match="'seed' is not a table"):
        load_config(write(tmp_path, "seed = 1\n"), None, ["seed.x=1"])


@pytest.mark.parametrize("cls", [RunConfig, ArenaConfig, MutationConfig])
def test_every_field_has_the_docstring_its_help_is_made_of(cls):
    docs = field_docs(cls)
    assert set(docs) == {f.name for f in dataclasses.fields(cls)}
    assert all(doc and "  " not in doc for doc in docs.values())


IMAGE, VECTOR = (1, 28, 28), (2,)


def test_the_distance_to_real_data_is_measured_only_where_the_game_reads_it():
    every = ArenaConfig(exploit="truncation", cull="real", metrics_every=5, tune=0)
    assert all(every.distance_due(g, shape) for g in range(12) for shape in (IMAGE, VECTOR))
    # the default: nobody culled on any data; auto culls by it on vector data, by_data on images
    default = ArenaConfig(metrics_every=5, tune=0)
    assert [g for g in range(12) if default.distance_due(g, VECTOR)] == [0, 5, 10]
    assert [g for g in range(12) if default.distance_due(g, IMAGE)] == [0, 5, 10]
    assert all(ArenaConfig(exploit="auto", metrics_every=5, tune=0).distance_due(g, VECTOR) for g in range(12))
    assert all(ArenaConfig(exploit="by_data", metrics_every=5, tune=0).distance_due(g, IMAGE) for g in range(12))
    for cfg in (ArenaConfig(exploit="by_data", metrics_every=5, tune=0),
                ArenaConfig(exploit="truncation", cull="fitness", metrics_every=5, tune=0)):
        assert [g for g in range(12) if cfg.distance_due(g, VECTOR)] == [0, 5, 10]
    assert not any(ArenaConfig(exploit="never", metrics_every=0, tune=0).distance_due(g, IMAGE) for g in range(12))
    # where the player's search over its rates reads it (arena.tuning.Tuning.due)
    assert all(ArenaConfig(metrics_every=0).distance_due(g, VECTOR, tuning=True) for g in range(12))


def test_the_default_exploit_is_never_auto_is_pbt_on_vector_data_only_and_a_given_one_is_kept():
    default = ArenaConfig()
    assert default.exploit == "never"
    assert (default.exploit_on(IMAGE), default.exploit_on(VECTOR)) == ("never", "never")
    # auto, the default from 7 December, 11:00: PBT on vector data, nobody replaced on images
    auto = ArenaConfig(exploit="auto")
    assert (auto.exploit_on(IMAGE), auto.exploit_on(VECTOR)) == ("never", "truncation")
    assert (default.cull, default.explore) == ("real", "perturb")  # truncation's, when asked for: Ray Tune's PBT
    assert (default.ready_on(IMAGE), default.ready_on(VECTOR)) == (10, 60)
    assert {ArenaConfig(ready=0).ready_on(shape) for shape in (IMAGE, VECTOR)} == {0}
    assert {ArenaConfig(ready=25).ready_on(shape) for shape in (IMAGE, VECTOR)} == {25}
    # by_data, a default of 7 December: PBT on images, nobody replaced on vector data
    assert (ArenaConfig(exploit="by_data").exploit_on(IMAGE), ArenaConfig(exploit="by_data").exploit_on(VECTOR)) \
        == ("truncation", "never")
    for given in ("always", "truncation", "never"):
        assert {ArenaConfig(exploit=given).exploit_on(shape) for shape in (IMAGE, VECTOR)} == {given}
    with pytest.raises(ValueError, match="arena.exploit must be one of always, truncation, never, auto, by_data; "
                                         "got 'sometimes'"):
        ArenaConfig(exploit="sometimes")


def test_the_couplings_between_players_are_by_the_data_and_a_given_capacity_is_kept():
    """Replay and shared fakes on vector data, off on images (with rounds, off everywhere by default: every
    player on images trains as an independent GAN does and only fights for its standing)."""
    default = ArenaConfig()
    assert (default.replay_on(VECTOR), default.shared_fakes_on(VECTOR)) == (512, 256)
    assert (default.replay_on(IMAGE), default.shared_fakes_on(IMAGE)) == (0, 0)
    assert default.round_every == 0
    # a shared pool asked for on images brings the replay buffer it needs; without a buffer, none is shared
    assert ArenaConfig(shared_fakes=64).replay_on(IMAGE) == 512
    assert ArenaConfig(replay=0).shared_fakes_on(VECTOR) == 0
    for given in (0, 128):
        chosen = ArenaConfig(replay=given, shared_fakes=0)
        assert {chosen.replay_on(shape) for shape in (IMAGE, VECTOR)} == {given}
        assert {chosen.shared_fakes_on(shape) for shape in (IMAGE, VECTOR)} == {0}
    for name in ("replay", "shared_fakes"):
        for bad in (-2, True, 1.5):
            with pytest.raises(ValueError, match=rf"arena.{name} must be -1 \(by the data\), 0 \(off\) or a capacity; "
                                                 rf"got {bad!r}"):
                ArenaConfig(**{name: bad})


ON_DATA = ("exploit_on", "ready_on", "rounds_every", "replay_on", "shared_fakes_on", "first_batch", "first_d_lr",
           "first_architecture", "metrics_every_on")


@pytest.mark.parametrize("given", [{}, {"exploit": "by_data", "round_every": -1},
                                   {"shared_fakes": 64, "metrics_every": 5},
                                   {"exploit": "always", "replay": 0, "ready": 3, "batch_size": 32,
                                    "architecture": "dense"}])
def test_a_run_records_the_game_its_data_gives_it_and_plays_the_same_one(given):
    """What a new run records (`for_data`): every setting left to the data made what it is on that data, a
    given one kept, and the game unchanged on that data however it is read."""
    arena = ArenaConfig(**given)
    for shape in (IMAGE, VECTOR):
        played = arena.for_data(shape)
        assert played.exploit in ("never", "truncation", "always") and played.founder_d_lr > 0
        assert played.architecture == ("conv" if is_image(shape) and "architecture" not in given else "dense")
        assert min(played.ready, played.round_every, played.replay, played.shared_fakes, played.batch_size,
                   played.metrics_every) >= 0
        assert [getattr(played, on)(shape) for on in ON_DATA] == [getattr(arena, on)(shape) for on in ON_DATA]
        assert played.for_data(shape) == played  # nothing left to resolve
        for name, value in given.items():
            if value != -1 and value != "by_data":
                assert getattr(played, name) == value, name
    assert (ArenaConfig().for_data(IMAGE).exploit, ArenaConfig().for_data(VECTOR).exploit) == ("never", "never")
    auto = ArenaConfig(exploit="auto")
    assert (auto.for_data(IMAGE).exploit, auto.for_data(VECTOR).exploit) == ("never", "truncation")
    images, vectors = RunConfig(dataset="mnist"), RunConfig(dataset="ring8")
    assert (images.for_data(IMAGE).turn_ms, vectors.for_data(VECTOR).turn_ms) == (500, 50)
    assert RunConfig(dataset="mnist", turn_ms=0).for_data(IMAGE).turn_ms == 0
    assert images.for_data(IMAGE).arena == images.arena.for_data(IMAGE)


def test_quality_is_recorded_every_tenth_loop_on_any_data_unless_given():
    assert [g for g in range(21) if ArenaConfig().metrics_due(g, VECTOR)] == [0, 10, 20]
    assert [g for g in range(21) if ArenaConfig().metrics_due(g, IMAGE)] == [0, 10, 20]
    assert [g for g in range(21) if ArenaConfig(metrics_every=5).metrics_due(g, VECTOR)] == [0, 5, 10, 15, 20]
    assert [g for g in range(21) if ArenaConfig(metrics_every=4).metrics_due(g, IMAGE)] == [0, 4, 8, 12, 16, 20]
    assert not any(ArenaConfig(metrics_every=0).metrics_due(g, shape) for g in range(21) for shape in (IMAGE, VECTOR))
    # the distance to real data is measured with the quality where nothing else reads it
    assert [g for g in range(21) if ArenaConfig(tune=0).distance_due(g, IMAGE)] == [0, 10, 20]
    with pytest.raises(ValueError, match="arena.metrics_every must be -1 \\(every 10th\\), 0 \\(the final "
                                         "population only\\) or a positive integer; got -2"):
        ArenaConfig(metrics_every=-2)


@pytest.mark.parametrize("ready", [-2, True, 2.5, "10"])
def test_ready_is_by_the_data_or_a_number_of_loops(ready):
    with pytest.raises(ValueError, match=f"arena.ready must be -1 \\(by the data\\) or a number of loops "
                                         f"\\(0 or more\\); got {ready!r}"):
        ArenaConfig(ready=ready)


@pytest.mark.parametrize("tune", [1, -3, True, 2.5, "10"])
def test_a_tuning_window_is_off_or_at_least_two_loops(tune):
    message = f"arena.tune must be 0 \\(off\\) or a window of at least 2 loops; got {tune!r}"
    with pytest.raises(ValueError, match=message):
        ArenaConfig(tune=tune)


def test_a_run_recorded_before_checkpoints_were_deleted_resumes_keeping_them_all():
    from experiments.config import resumed_config

    recorded = RunConfig(players=2).to_dict()
    assert resumed_config(recorded, RunConfig(), {}).keep_checkpoints == 3  # as it was recorded
    del recorded["keep_checkpoints"], recorded["keep_every"]
    old = resumed_config(recorded, RunConfig(), {})
    assert (old.players, old.keep_checkpoints) == (2, 0)
