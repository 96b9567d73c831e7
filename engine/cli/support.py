"""Small pieces the CLI modules share: errors, passphrase prompts, the user's ledger.
File reading and writing is engine.files (the GUI uses it too)."""

from __future__ import annotations

import getpass
import os
import sys

from engine.errors import FakeTaggerError

EXIT_ERROR = 1


class CliError(FakeTaggerError):
    pass


def need_passphrase(
    confirm: bool = False, env: str = "FAKETAGGER_PASSPHRASE", prompt: str = "Passphrase: "
) -> str:
    """From the environment (scripts, CI) or a no-echo prompt; never from a command-line flag,
    which would end up in the shell history and the process list."""
    value = os.environ.get(env)
    if value is not None:
        return value
    if not sys.stdin.isatty():
        raise CliError(f"no passphrase: set {env} or run in a terminal")
    first = getpass.getpass(prompt)
    if confirm and getpass.getpass("Repeat: ") != first:
        raise CliError("the two passphrases differ")
    return first


def ledger_from_env():
    from engine.store.ledger import Ledger

    return Ledger()
