"""What the portal's management commands share: actions as subcommands, ``--json``,
and refusals as one ``error: ...`` line on stderr: exit status 1 for a refusal, 2 for a
usage error (a bad option or argument, a path that is no readable file).

``ProjectCommand`` is the one way: a usage error from argparse, a ``CommandError`` (Django
would print ``CommandError: ...``) and a ``DomainError`` all become that one line when the
command runs from the command line; called from code (``call_command``) the command
raises ``CommandError`` as Django's own commands do.

Every command of the service derives from ``ProjectCommand``: a database that cannot
take writes is one ``error:`` line and exit status 1. A command lists its actions in
``add_actions`` and maps each to a handler in
``handlers``; a handler calls one service or selector and prints the result with
``emit`` (text) or ``emit_json``. A ``DomainError`` from a service becomes the one-line
refusal; nothing was changed, since services refuse before they write.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import os
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeAlias

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from deviceupdate.database import database_error_line, database_unavailable
from portal.errors import DomainError
from portal.services.audit import Actor

Handler = Callable[[dict[str, Any]], None]


class OneLineParser(CommandParser):
    """An action's parser: a usage error is one ``error: ...`` line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        if self.called_from_command_line:
            self.exit(2, f"error: {message} (see '{self.prog} --help')\n")
        # Called from code (call_command): Django's way, an exception.
        raise CommandError(f"Error: {message}")


# The subparsers of a command; a string, since argparse's class is not generic at run time.
Actions: TypeAlias = "argparse._SubParsersAction[OneLineParser]"


def _json_default(value: object) -> str:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def one_line(text: str) -> str:
    """Collapse whitespace so that a message is always exactly one line."""
    return " ".join(text.split())


USAGE = 2  # the exit status of a usage error; a refusal exits 1


def usage_error(message: str) -> CommandError:
    """A bad invocation: one ``error: ...`` line and exit status 2."""
    return CommandError(message, returncode=USAGE)


def readable_file(path: Path) -> Path:
    """``path`` when it is a file this process can read, else a usage error."""
    if path.is_dir():
        raise usage_error(f"{path}: is a directory, not a file")
    if not path.exists():
        raise usage_error(f"{path}: no such file")
    if not path.is_file():
        raise usage_error(f"{path}: not a regular file")
    if not os.access(path, os.R_OK):
        raise usage_error(f"{path}: permission denied")
    return path


def command_actor() -> Actor:
    """The audit actor of a command: ``manage.py (<operating system user>)``."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (some containers)
        user = "unknown user"
    return Actor.system(f"manage.py ({user})")


class ProjectCommand(BaseCommand):
    """Base of every command of the service: every refusal is one ``error: ...`` line on
    stderr (exit 1; usage errors 2), and so is a database that cannot be written
    (read-only, disk full, gone: ``error: the database is not writable: ...``, exit 1),
    never a traceback."""

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        # Django builds a plain CommandParser and has no hook for the class; the subclass
        # only changes how a usage error is printed (a missing or unknown ACTION too).
        parser.__class__ = OneLineParser
        return parser

    def execute(self, *args: Any, **options: Any) -> str | None:
        try:
            return super().execute(*args, **options)
        except DatabaseError as error:
            if not database_unavailable(error):
                raise
            self.refuse(database_error_line(error))
        except DomainError as error:
            if not getattr(self, "_called_from_command_line", False):
                raise CommandError(error.message) from None
            self.refuse(error.message)
        except CommandError as error:
            if not getattr(self, "_called_from_command_line", False):
                raise
            # Django would print "CommandError: ..."; the README promises "error: ...".
            self.refuse(str(error), status=error.returncode)

    def refuse(self, message: str, *, status: int = 1) -> NoReturn:
        """Write the one-line refusal to stderr and stop with ``status`` (1: refused)."""
        self.stderr.write(f"error: {one_line(message)}")
        raise SystemExit(status)


class PortalCommand(ProjectCommand):
    """Base of commands of the form ``manage.py <command> <action> [options] [--json]``."""

    as_json: bool
    actor: Actor

    def add_arguments(self, parser: CommandParser) -> None:
        subparsers = parser.add_subparsers(
            dest="action",
            metavar="ACTION",
            required=True,
            parser_class=OneLineParser,
        )
        self.add_actions(subparsers)

    def add_actions(self, subparsers: Actions) -> None:
        raise NotImplementedError

    def handlers(self) -> dict[str, Handler]:
        raise NotImplementedError

    @staticmethod
    def action_parser(subparsers: Actions, name: str, help_text: str) -> CommandParser:
        """Add one action, with the ``--json`` switch every action has."""
        parser = subparsers.add_parser(name, help=help_text, description=help_text)
        parser.add_argument(
            "--json", action="store_true", help="print machine-readable JSON on stdout"
        )
        return parser

    def handle(self, *args: Any, **options: Any) -> None:
        self.as_json = bool(options.get("json"))
        self.actor = command_actor()
        handler = self.handlers()[options["action"]]
        try:
            handler(options)
        except DomainError as error:
            self.refuse(error.message)

    # --- output ------------------------------------------------------------------

    def report_refusal(self, message: str) -> None:
        """A refusal in a bulk action: one line on stderr, and the action goes on."""
        self.stderr.write(f"error: {one_line(message)}")

    def emit(self, text: str) -> None:
        self.stdout.write(text)

    def emit_json(self, data: object) -> None:
        self.stdout.write(json.dumps(data, indent=2, default=_json_default))

    def emit_table(self, headers: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
        """Columns aligned with two spaces between them; no trailing spaces."""
        table = [list(headers), *([str(cell) for cell in row] for row in rows)]
        widths = [max(len(row[index]) for row in table) for index in range(len(headers))]
        for row in table:
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
            self.stdout.write("  ".join(cells).rstrip())
