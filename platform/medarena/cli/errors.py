"""What a failed command prints and logs: a user's error is one message and exit status 2; the
platform's own error is logged in full to ``$MEDARENA_HOME/logs/medarena.log`` and exits 1."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from medarena.cli.render import err_console
from medarena.exceptions import UserError
from medarena.settings import Settings, load_settings, secure_home

log = logging.getLogger("medarena")


def log_file(settings: Settings) -> Path:
    """``$MEDARENA_HOME/logs/medarena.log``, its folder created."""
    path = settings.home.resolve() / "logs" / "medarena.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def command_settings() -> Settings:
    """The settings from the environment; a bad value is a message and exit status 2."""
    try:
        return load_settings()
    except UserError as exc:
        _print_user_error(exc)
        raise typer.Exit(2) from None


def _print_user_error(exc: UserError) -> None:
    err_console.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True, soft_wrap=True)


@contextmanager
def errors(settings: Settings) -> Iterator[None]:
    """Make the state folder owner-only, then run the command: user errors become a message and
    exit 2; anything else is logged in full and exits 1."""
    try:
        secure_home(settings.home)
        yield
    except UserError as exc:
        _print_user_error(exc)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        err_console.print("interrupted")
        raise typer.Exit(130) from None
    except Exception:
        path = log_file(settings)
        handler = logging.FileHandler(path, encoding="utf-8")
        log.addHandler(handler)
        log.exception("unexpected error in: %s", " ".join(sys.argv))
        log.removeHandler(handler)
        err_console.print(
            f"[bold red]an unexpected error occurred[/]; the details are logged in {path}"
        )
        raise typer.Exit(1) from None
