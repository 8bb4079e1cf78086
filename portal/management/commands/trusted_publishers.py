"""Trusted publishers: the certificates a package's catalog signer must chain to."""

from __future__ import annotations

import os
import stat
import sys
from typing import IO, Any

from portal.management.base import Actions, Handler, PortalCommand
from portal.models import TrustedPublisher
from portal.services.publishers import (
    MAX_PEM_BYTES,
    normalise_fingerprint,
    publisher_add,
    publisher_remove,
)


def publisher_json(publisher: TrustedPublisher) -> dict[str, Any]:
    return {
        "fingerprint_sha256": publisher.fingerprint_sha256,
        "subject": publisher.subject,
        "issuer": publisher.issuer,
        "serial_number": publisher.serial_number,
        "not_valid_before": publisher.not_valid_before,
        "not_valid_after": publisher.not_valid_after,
        "added_at": publisher.added_at,
    }


class Command(PortalCommand):
    help = (
        "Trusted publishers: a package is imported only when its catalog's signer chains "
        "to one of these certificates."
    )
    # call_command(..., stdin=<binary stream>) stands in for standard input in tests.
    stealth_options = ("stdin",)

    def add_actions(self, subparsers: Actions) -> None:
        self.action_parser(subparsers, "list", "list the trusted certificates")
        add = self.action_parser(subparsers, "add", "trust one PEM certificate")
        add.add_argument(
            "pem",
            metavar="PEM",
            help=f"path of a PEM certificate file (at most {MAX_PEM_BYTES // 1024} KiB), "
            "or - to read it from standard input",
        )
        remove = self.action_parser(subparsers, "remove", "stop trusting a certificate")
        remove.add_argument(
            "fingerprint",
            metavar="FINGERPRINT",
            help="its SHA-256 fingerprint: 64 hex digits, colons allowed",
        )

    def handlers(self) -> dict[str, Handler]:
        return {"list": self.list_publishers, "add": self.add, "remove": self.remove}

    def list_publishers(self, options: dict[str, Any]) -> None:
        publishers = list(TrustedPublisher.objects.all())
        if self.as_json:
            self.emit_json([publisher_json(publisher) for publisher in publishers])
            return
        if not publishers:
            self.emit("no trusted publishers")
            return
        self.emit_table(
            ("FINGERPRINT (SHA-256)", "SUBJECT", "VALID UNTIL"),
            (
                (
                    publisher.fingerprint_sha256,
                    publisher.subject,
                    f"{publisher.not_valid_after:%Y-%m-%d}",
                )
                for publisher in publishers
            ),
        )

    def _read_limited(self, stream: IO[bytes], name: str) -> bytes:
        data = stream.read(MAX_PEM_BYTES + 1)
        if len(data) > MAX_PEM_BYTES:
            self.refuse(f"{name} is larger than {MAX_PEM_BYTES // 1024} KiB")
        return data

    def _read_pem(self, source: str, stdin: IO[bytes] | None) -> str:
        if source == "-":
            data = self._read_limited(stdin or sys.stdin.buffer, "standard input")
        else:
            try:
                with open(source, "rb") as file:
                    # The size is checked before a byte is read.
                    info = os.fstat(file.fileno())
                    if stat.S_ISREG(info.st_mode) and info.st_size > MAX_PEM_BYTES:
                        self.refuse(f"{source} is larger than {MAX_PEM_BYTES // 1024} KiB")
                    data = self._read_limited(file, source)
            except OSError as error:
                self.refuse(f"cannot read {source}: {error.strerror or error}")
        # Not text at all: the service then says it is not a certificate.
        return data.decode("utf-8", "replace")

    def add(self, options: dict[str, Any]) -> None:
        pem = self._read_pem(options["pem"], options.get("stdin"))
        publisher = publisher_add(pem=pem, actor=self.actor)
        message = (
            f"trusted {publisher.subject} (SHA-256 {publisher.fingerprint_sha256}, "
            f"valid until {publisher.not_valid_after:%Y-%m-%d})"
        )
        if self.as_json:
            self.emit_json({"ok": True, "message": message, "publisher": publisher_json(publisher)})
        else:
            self.emit(message)

    def remove(self, options: dict[str, Any]) -> None:
        fingerprint = normalise_fingerprint(options["fingerprint"])
        publisher_remove(fingerprint=fingerprint, actor=self.actor)
        message = f"no longer trusted: {fingerprint}"
        if self.as_json:
            self.emit_json({"ok": True, "message": message, "fingerprint_sha256": fingerprint})
        else:
            self.emit(message)
