"""A few hundred random or broken command lines and configuration files: each gives a clean run
(here: a configuration handed to the launcher) or one line naming what is wrong, exit code 2."""

from __future__ import annotations

import dataclasses
import random

import pytest

from experiments import cli
from experiments import run as run_module
from experiments.config import RunConfig, field_docs

VALUES = {
    "--players": ["4", "1", "0", "-3", "abc", "2.5", ""],
    "--dataset": ["ring8", "grid25", "digits", "mnist", "nope", "RING8", ""],
    "--budget-seconds": ["60", "0.5", "0", "-1", "nan", "inf", "x"],
    "--seed": ["0", "7", "-1", "1e3"],
    "--run-id": ["ok-1", "a/b", "", "-x", "x" * 80, "名前"],
    "--out": ["runs", "", "s3://bucket/x"],
    "--mongo-uri": ["mongodb://127.0.0.1:1/", "http://host", "mongodb://u:secret@h:1/", "::"],
    "--mongo-db": ["arena", "a.b", "", "a b"],
    "--address": ["local", "127.0.0.1:1"],
    "--cpus-per-player": ["0.5", "0", "-1", "many"],
    "--num-cpus": ["2", "0", "x"],
    "--resume": ["ghost"],
    "--set": ["arena.steps=50", "arena.steps=x", "bogus=1", "steps", "mutation.adapt=true", "seed.x=1",
              "dataset=grid25", "arena.matchmaking=swiss", "mutation.p_width=2"],
    "--bogus": ["1"],
}
TOML_LINES = [
    "players = 3", "players = 'four'", "dataset = 'grid25'", "budget_seconds = 1e9", "colour = 'blue'",
    "[arena]", "opponents = 0", "matchmaking = 'swiss'", "replay_share = 2", "steps = 50", "screen = 0", "screen = 0.25",
    "[mutation]", "p_add_layer = 1.5", "max_width = 4", "min_width = 8", "small_sigma = nan", "adapt = true",
    "[nonsense]", "x = = 1", "[arena", "round_size = 1", "architecture = 'conv'",
]


def random_case(rng: random.Random, tmp_path, index: int) -> list[str]:
    args = []
    for flag in rng.sample(sorted(VALUES), rng.randint(0, 4)):
        args += [flag, rng.choice(VALUES[flag])]
    if rng.random() < 0.4:
        path = tmp_path / f"case{index}.toml"
        path.write_text("\n".join(rng.choice(TOML_LINES) for _ in range(rng.randint(1, 6))) + "\n")
        args += ["--config", str(path)]
    return args


def test_random_command_lines_end_cleanly(tmp_path, monkeypatch, capsys):
    launched = []
    monkeypatch.setattr(run_module, "launch", lambda cfg, console, resume=None: launched.append(cfg) or 0)
    rng = random.Random(2026)
    outcomes = {0: 0, 2: 0}
    for index in range(300):
        args = random_case(rng, tmp_path, index)
        code = cli.run_app(run_module.app, args)
        captured = capsys.readouterr()
        assert code in (0, 2), (args, code, captured.err)
        assert "Traceback" not in captured.out + captured.err, args
        assert "secret" not in captured.out + captured.err, args
        outcomes[code] += 1
        if code == 2:
            lines = captured.err.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("error: "), (args, captured.err)
        else:
            assert isinstance(launched[-1], RunConfig), args
    assert outcomes[0] > 20 and outcomes[2] > 100, outcomes


@pytest.mark.parametrize("text, named", [("players = 'four'", "players"), ("x = = 1", "TOML"),
                                         ("[arena]\nmatchmaking = 'swiss'", "matchmaking"),
                                         ("colour = 1", "colour")])
def test_a_bad_configuration_file_is_named(tmp_path, capsys, text, named):
    path = tmp_path / "run.toml"
    path.write_text(text + "\n")
    assert cli.run_app(run_module.app, ["--config", str(path)]) == 2
    assert named in capsys.readouterr().err


def test_help_gives_each_field_its_flag_docstring_and_default(capsys):
    assert cli.run_app(run_module.app, ["--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for field in dataclasses.fields(RunConfig):
        if field.name in ("arena", "mutation"):
            continue
        flag = "--" + field.name.replace("_", "-")
        doc = field_docs(RunConfig)[field.name]
        assert f"{flag} " in text and doc in text, field.name
        if field.default is not None:
            shown = format(field.default, "g") if isinstance(field.default, float) else str(field.default)
            assert f"{doc} [default: {shown}]" in text, field.name
    assert "--set arena.KEY=VALUE: opponents=3," in text and 'matchmaking="random"' in text
    assert "--set mutation.KEY=VALUE: p_add_layer=0.15," in text and "adapt=false" in text


def test_a_switch_takes_its_no_form_and_the_last_one_given_wins(monkeypatch):
    launched = []
    monkeypatch.setattr(run_module, "launch", lambda cfg, console, resume=None: launched.append(cfg) or 0)
    for args, expected in (([], True), (["--no-dashboard"], False), (["--no-dashboard", "--dashboard"], True),
                           (["--set", "dashboard=false"], False), (["--set", "dashboard=false", "--dashboard"], True)):
        assert cli.run_app(run_module.app, args) == 0, args
        assert launched[-1].dashboard is expected, args


def test_set_reaches_the_configuration_and_resume_refuses_it(monkeypatch, capsys):
    launched = []
    monkeypatch.setattr(run_module, "launch", lambda cfg, console, resume=None: launched.append(cfg) or 0)
    assert cli.run_app(run_module.app, ["--set", "arena.steps=7", "--set", "players=3", "--players", "2"]) == 0
    assert launched[-1].arena.steps == 7 and launched[-1].players == 2  # a flag over --set
    assert cli.run_app(run_module.app, ["--resume", "r1", "--set", "arena.steps=7"]) == 2
    assert capsys.readouterr().err.strip() == ("error: --resume continues the run as it was configured; "
                                               "arena.steps cannot be changed")
