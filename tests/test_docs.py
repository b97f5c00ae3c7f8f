"""The README, --help and .ci/run say the same things as the code (in the manner of sqlite-utils' test_docs)."""

from __future__ import annotations

import re
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from converter import cli
from converter.mapping import parse_mapping_toml, resolve
from support.data import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


def _first_code_block(text: str) -> str:
    return re.search(r"```sh\n(.*?)```", text, re.S).group(1)


def _commands(block: str) -> list[str]:
    return [line for line in block.splitlines() if line and not line.startswith("#")]


def test_readme_opens_with_the_two_commands():
    run_sample, run_tests = _commands(_first_code_block(README))
    assert "pip install -e ." in run_sample and "examples/fishers-sample.csv --preset movebank" in run_sample
    assert "pytest" in run_tests


def test_ci_runs_exactly_the_readme_test_command():
    test_command = _commands(_first_code_block(README))[1]
    ci_lines = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()
                if line.strip() and not line.startswith("#") and not line.startswith(("set ", "cd ", "export CI=1"))]
    assert ci_lines == [test_command]


def test_sample_command_in_the_readme_works(tmp_path):
    command = _commands(_first_code_block(README))[0].split("&&", 1)[1].strip()
    argv = command.split()
    assert argv[0] == "csv2lp"
    argv[argv.index("-o") + 1] = str(tmp_path / "out.lp")
    done = subprocess.run([sys.executable, "-m", "converter", *argv[1:]], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "1,200 rows read" in done.stderr and "1,200 lines written" in done.stderr
    assert len((tmp_path / "out.lp").read_text().splitlines()) == 1200


def _all_commands() -> list[tuple[str, click.Command]]:
    return sorted(cli.main.commands.items())


@pytest.mark.parametrize(("name", "command"), _all_commands(), ids=[n for n, _ in _all_commands()])
def test_every_command_has_help_with_an_example(name, command):
    result = CliRunner().invoke(cli.main, [name, "--help"])
    assert result.exit_code == 0, result.output
    if name != "presets":
        assert "Example" in result.output, f"`csv2lp {name} --help` shows no example"


def test_readme_options_exist_in_help():
    help_text = CliRunner().invoke(cli.main, ["convert", "--help"]).output
    table_options = set(re.findall(r"`(--[a-z0-9-]+)", README))
    other_commands = {"--help", "--version"}
    execd_help = CliRunner().invoke(cli.main, ["execd", "--help"]).output if "execd" in cli.main.commands else ""
    missing = sorted(o for o in table_options - other_commands if o not in help_text and o not in execd_help)
    assert missing == [], f"README names options that no --help lists: {missing}"


def test_readme_exit_statuses_match_the_cli():
    documented = dict(re.findall(r"`(\d)` ([^;.]+)", README.split("Exit status:", 1)[1].split("\n\n", 1)[0]))
    assert set(documented) == {"0", "1", "2", "3", "4"}
    assert (cli.EXIT_OK, cli.EXIT_ERROR, cli.EXIT_USAGE, cli.EXIT_REJECTS, cli.EXIT_STOPPED) == (0, 1, 2, 3, 4)
    assert "rejected" in documented["3"] and "fail" in documented["4"]


def test_readme_mapping_file_example_is_valid():
    toml = re.search(r"```toml\n(.*?)```", README, re.S).group(1)
    spec = parse_mapping_toml(toml, source="README")
    plan = resolve(spec, ["when", "station-id", "temp C", "rain mm", "notes"], source="README", default_measurement="x")
    assert plan.measurement == "weather" and [t.key for t in plan.tags] == ["station"]
    assert {f.key for f in plan.fields} == {"temp", "rain_mm"}


def test_preset_in_readme_exists():
    for name in set(re.findall(r"--preset ([a-z]+)", README)):
        assert (REPO / "converter" / "presets" / f"{name}.toml").exists(), name
