"""Shell completion: the script each shell sources, and the answers the CLI gives it, asked
the way bash, zsh and fish ask; a real bash, fish and zsh each run the generated script end
to end (.ci/run installs fish and zsh from Debian's packages)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def real_shell(name: str) -> str:
    """The shell's path; skipped when it is missing on a developer's machine, a failure in CI
    (where .ci/run installs it), so the real-shell tests cannot silently stop running."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed; .ci/run installs it from Debian's packages")
        pytest.skip(f"{name} is not installed")
    return path


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


def test_the_fish_script_completes_in_a_real_fish() -> None:
    fish = real_shell("fish")
    program = """
        scim-readiness completion fish | source
        complete -C "scim-readiness rep"
        echo ==
        complete -C "scim-readiness report "
        echo ==
        complete -C "scim-readiness run --fail-on "
    """
    done = subprocess.run(
        [fish, "--no-config", "-c", program],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    commands, report, fail_on = (
        [line.split("\t")[0] for line in part.strip().splitlines()]
        for part in done.stdout.split("==\n")
    )
    assert commands == ["report"]
    assert sorted(report) == ["diff", "show"]
    assert fail_on == ["fail", "warn"]


# zsh completes only inside its line editor, so the test types into an interactive zsh on a
# pseudo-terminal (zsh's own zpty module) and reads what the Tab key lists.
_ZSH_DRIVER = r"""
zmodload zsh/zpty
zpty -b z 'zsh -f -i'
zpty -w z 'PS1="> "; autoload -U compinit; compinit -u'
zpty -w z 'eval "$(scim-readiness completion zsh)"; echo COMPLETION-LOADED'
zpty -r z line '*COMPLETION-LOADED*'
zpty -r z line '*COMPLETION-LOADED*'
zpty -w -n z $'scim-readiness report \t'
out=""
for attempt in {1..100}; do
  while zpty -r -t z chunk; do out+=$chunk; done
  [[ $out == *show* ]] && break
  sleep 0.1
done
print -r -- "$out"
zpty -d z
"""


def test_the_zsh_script_completes_in_a_real_zsh() -> None:
    zsh = real_shell("zsh")
    done = subprocess.run(
        [zsh, "-f", "-c", _ZSH_DRIVER],
        env=cli_env(TERM="dumb"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    listed = done.stdout.replace("\r", "")
    # Each candidate with its help text, as the _describe shape of typer's zsh answer shows it.
    assert "diff  -- Show what got worse or better" in listed, listed[-2000:]
    assert "show  -- Re-render a saved JSON report" in listed, listed[-2000:]
