"""Shell completion: the script each shell sources, and the answers the CLI gives it, asked
the way bash, zsh and fish ask (a real bash runs the generated script end to end)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("_SCIM_READINESS")}
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    return {**env, **extra}


def ask(shell: str, **extra: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "scim_readiness"],
        env=cli_env(_SCIM_READINESS_COMPLETE=f"complete_{shell}", **extra),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def script(shell: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "scim_readiness", "completion", shell],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_a_script_for_each_shell(shell: str) -> None:
    text = script(shell)
    assert "_SCIM_READINESS_COMPLETE" in text and "scim-readiness" in text


def test_an_unknown_shell_is_a_usage_error() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "scim_readiness", "completion", "tcsh"],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "tcsh" in done.stderr


def test_bash_completes_commands_options_and_choices() -> None:
    assert ask("bash", COMP_WORDS="scim-readiness re", COMP_CWORD="1") == ["report"]
    assert ask("bash", COMP_WORDS="scim-readiness run --fail-on ", COMP_CWORD="3") == [
        "fail",
        "warn",
    ]
    options = ask("bash", COMP_WORDS="scim-readiness run --ht", COMP_CWORD="2")
    assert options == ["--html"]


def test_zsh_and_fish_get_answers_in_their_own_shapes() -> None:
    zsh = "\n".join(ask("zsh", _TYPER_COMPLETE_ARGS="scim-readiness report "))
    assert '"show":' in zsh and '"diff":' in zsh
    fish = ask(
        "fish",
        _TYPER_COMPLETE_ARGS="scim-readiness rep",
        _TYPER_COMPLETE_FISH_ACTION="get-args",
    )
    assert [line.split("\t")[0] for line in fish] == ["report"]


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_the_bash_script_completes_in_a_real_bash() -> None:
    program = """
        eval "$(scim-readiness completion bash)"
        COMP_WORDS=(scim-readiness report d)
        COMP_CWORD=2
        _scim_readiness_completion scim-readiness
        printf '%s\\n' "${COMPREPLY[@]}"
        complete -p scim-readiness
    """
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", program],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "diff"
    assert lines[-1] == "complete -o default -F _scim_readiness_completion scim-readiness"
