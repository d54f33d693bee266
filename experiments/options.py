"""The command-line face of the one configuration, for every command that runs the arena: a flag for each
plain field of `RunConfig` (its docstring and default are the help), `--config FILE.toml`, and
`--set SECTION.KEY=VALUE` for any key of that file. A new field needs no flag code of its own."""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer

from experiments.config import RunConfig, field_docs

ConfigFile = Annotated[Optional[Path], typer.Option(
    "--config", help="TOML configuration file: the flags' keys, and the [arena] and [mutation] tables listed below.")]
Sets = Annotated[Optional[list[str]], typer.Option(
    "--set", metavar="SECTION.KEY=VALUE", help="One key of the configuration file, over the file "
                                               "(repeatable; a TOML value, or a bare word), e.g. arena.steps=400.")]


def _shown(value) -> str:
    return format(value, "g") if isinstance(value, float) else str(value)


def _toml(value) -> str:
    """A default as it is written in the file and after --set."""
    if isinstance(value, bool):
        return str(value).lower()
    return f'"{value}"' if isinstance(value, str) else _shown(value)


def flag_help(cls: type, field: dataclasses.Field) -> str:
    """The field's docstring, with its default when it has one (a default of None is explained there)."""
    default = field.default_factory() if field.default is dataclasses.MISSING else field.default
    doc = field_docs(cls).get(field.name, "")
    return doc if default is None else f"{doc} [default: {_shown(default)}]"


def _plain(kind):
    """`int` of `int | None`: what the flag parses, None being its absence."""
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        return next(option for option in typing.get_args(kind) if option is not type(None))
    return kind


def _flag(name: str, kind) -> str:
    """`--name`, or `--name/--no-name` for a switch."""
    flag = "--" + name.replace("_", "-")
    return f"{flag}/--no-{flag[2:]}" if _plain(kind) is bool else flag


def _flags() -> list[inspect.Parameter]:
    hints = typing.get_type_hints(RunConfig)
    return [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, annotation=Optional[_plain(hints[f.name])],
                              default=typer.Option(None, _flag(f.name, hints[f.name]), help=flag_help(RunConfig, f),
                                                   envvar=f.metadata.get("envvar")))
            for f in dataclasses.fields(RunConfig) if not dataclasses.is_dataclass(hints[f.name])]


def section_keys() -> str:
    """Every key of the configuration's tables with its default, for the end of `--help`."""
    hints = typing.get_type_hints(RunConfig)
    tables = [(f.name, hints[f.name]) for f in dataclasses.fields(RunConfig) if dataclasses.is_dataclass(hints[f.name])]
    return "\n\n".join(f"[{name}], {field_docs(RunConfig)[name][0].lower()}{field_docs(RunConfig)[name][1:-1]}; "
                         f"--set {name}.KEY=VALUE: " + ", ".join(f"{f.name}={_toml(f.default)}"
                                                              for f in dataclasses.fields(cls)) + "."
                         for name, cls in tables)


def with_config_flags(command: Callable) -> Callable:
    """`command(given, **rest)` as a typer command that also takes a flag for each plain field of
    `RunConfig`; `given` holds the flags given, by field name."""
    flags = _flags()
    own = list(inspect.signature(command, eval_str=True).parameters.values())[1:]

    def wrapper(**values):
        given = {p.name: values.pop(p.name) for p in flags}
        return command({k: v for k, v in given.items() if v is not None}, **values)

    wrapper.__signature__ = inspect.Signature([*flags, *(p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own)])
    wrapper.__name__, wrapper.__doc__ = command.__name__, command.__doc__
    return wrapper
