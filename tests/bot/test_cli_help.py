"""`revbot --help`: every command and option explained with an example that really parses, and
the help answered without loading the data stack (its speed is measured by the benchmark)."""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys

import pytest

from bot.cli import build_parser
from bot.cli_help import COMMON, EXAMPLES


def _subparsers(parser: argparse.ArgumentParser, path=()):
    """(command path, parser) of every command, nested ones (`export scores`) included."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*path, name), sub
                yield from _subparsers(sub, (*path, name))


COMMANDS = list(_subparsers(build_parser()))


def _example_argv(line: str) -> list[str] | None:
    """The argv of an example line (`revbot ...`), without its comment, environment or pipe."""
    text = re.sub(r"^(\w+=\S+\s+)*", "", line.strip())  # SLACK_BOT_TOKEN=... revbot serve
    if not text.startswith("revbot "):
        return None
    text = re.split(r"\s{2,}", text)[0].split(" | ")[0]
    return shlex.split(text)[1:]


def test_every_command_has_help_and_examples():
    assert {path[-1] for path, _ in COMMANDS} == set(EXAMPLES)
    for path, sub in COMMANDS:
        assert sub.description and sub.epilog and "examples:" in sub.epilog, path
        for action in sub._actions:
            if action.help == argparse.SUPPRESS or isinstance(
                action, argparse._SubParsersAction | argparse._HelpAction
            ):
                continue
            assert action.help and len(action.help) > 8, (path, action.dest)


@pytest.mark.parametrize("path,sub", COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_every_option_appears_in_its_commands_examples(path, sub):
    examples = EXAMPLES[path[-1]][1]
    for action in sub._actions:
        if isinstance(action, argparse._HelpAction) or not action.option_strings:
            continue
        long = max(action.option_strings, key=len)
        assert re.search(rf"{re.escape(long)}(\s|$)", examples), (path, long)


def test_every_example_parses_with_the_real_parser():
    lines = [line for _, (_, ex) in EXAMPLES.items() for line in ex.splitlines()]
    lines += COMMON.splitlines()
    checked = 0
    for line in lines:
        argv = _example_argv(line)
        if argv is None:
            continue
        try:
            build_parser().parse_args(argv)
        except SystemExit:
            pytest.fail(f"the example `{line.strip()}` does not parse")
        checked += 1
    assert checked >= 50


def test_a_bad_example_would_be_caught():
    """The check above can fail: a made-up option does not parse."""
    with pytest.raises(SystemExit):
        build_parser().parse_args(_example_argv("  revbot digest --tpo 3   typo"))


def test_help_loads_no_data_stack():
    """`revbot --help` (and each command's) imports neither pandas nor LightGBM: that is what
    keeps it instant. Run in a fresh interpreter, as a user's shell would."""
    code = (
        "import sys\nfrom bot.cli import main\n"
        "for argv in (['--help'], ['digest', '--help'], ['score', '--help'], ['export', 'scores', '--help'], "
        "['--version']):\n"
        "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
        "heavy = [m for m in ('pandas', 'numpy', 'lightgbm', 'sklearn', 'matplotlib', 'dask', "
        "'distributed', 'slack_bolt', 'apscheduler') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "usage: revbot" in out and "examples:" in out
    assert "HEAVY []" in out, out.splitlines()[-1]
