"""What a failed command prints and logs: a user's error is one message and exit status 2; the
platform's own error is logged in full to ``$MEDARENA_HOME/logs/medarena.log`` and exits 1."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from io import TextIOWrapper
from pathlib import Path

import typer

from medarena.cli.render import err_console
from medarena.exceptions import UserError
from medarena.settings import Settings, load_settings, secure_home

log = logging.getLogger("medarena")


def log_file(settings: Settings) -> Path:
    """``$MEDARENA_HOME/logs/medarena.log``."""
    return settings.home.resolve() / "logs" / "medarena.log"


class _LogFileHandler(logging.FileHandler):
    """Opens the log file, and makes its folder, when the first record comes: a command that
    logs nothing leaves no folder behind."""

    def _open(self) -> TextIOWrapper:
        Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
        return super()._open()


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
    """Make the state folder owner-only, then run the command with the platform's log going to
    :func:`log_file`: user errors become a message and exit 2; anything else is logged in full
    and exits 1."""
    handler = _LogFileHandler(log_file(settings), encoding="utf-8", delay=True)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    log.addHandler(handler)
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
        log.exception("unexpected error in: %s", " ".join(sys.argv))
        err_console.print(
            f"[bold red]an unexpected error occurred[/]; the details are logged in "
            f"{log_file(settings)}"
        )
        raise typer.Exit(1) from None
    finally:
        log.removeHandler(handler)
        handler.close()
