"""The ``cabextract`` path: LZX folders are handed to Debian's ``cabextract`` (libmspack),
because no maintained pure-Python LZX decoder exists (cabarchive refuses LZX)."""

from __future__ import annotations

import contextlib
import mmap
import os
import re
import shutil
import stat
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

from portal.packaging.cabinet.format import (
    _COPY_CHUNK,
    _SIGNATURE,
    CabinetListing,
    CabinetMember,
    ExtractedMember,
)
from portal.packaging.cabinet.headers import _display_name
from portal.packaging.cabinet.staging import _Sink, _Staging
from portal.packaging.errors import PackageError

# "  NAME  OK        MD5" or "  NAME  failed (REASON)": one line per member of ``cabextract -t``.
_CABEXTRACT_TEST_LINE = re.compile(
    r"^  (?P<name>.+)  (?:OK +[0-9a-f]{32}|failed \((?P<reason>.*)\))$"
)

LZX_NEEDS_CABEXTRACT = (
    "LZX-compressed packages need the cabextract program (Debian package 'cabextract'), "
    "which is not installed"
)


def lzx_support() -> str | None:
    """None when LZX folders can be decoded here, else the one-line notice saying why not."""
    return None if shutil.which("cabextract") else LZX_NEEDS_CABEXTRACT


def _cabextract_program(lzx: list[CabinetMember]) -> str | None:
    """cabextract's path when there are LZX members (refusing them without it), else None."""
    if not lzx:
        return None
    program = shutil.which("cabextract")
    if program is None:
        raise PackageError(LZX_NEEDS_CABEXTRACT, member=lzx[0].name)
    return program


@contextlib.contextmanager
def _cabextract_input(
    path: Path, data: mmap.mmap, listing: CabinetListing, make_directory: Callable[[], Path]
) -> Iterator[Path]:
    """The file to hand cabextract: the cabinet itself, or a copy without its signature.

    cabextract searches a whole file for cabinets (it skips the bytes of each one it finds),
    so a signature holding the bytes "MSCF" could smuggle in a second cabinet; then it gets
    a copy of the cabinet alone. Real signatures almost never hold them, so this is rare.
    """
    start = listing.signature_offset
    if start is None or data.find(_SIGNATURE, max(0, start - len(_SIGNATURE) + 1)) < 0:
        yield path.absolute()
        return
    directory = make_directory()
    try:
        copy = directory / "cabinet.cab"
        with open(copy, "xb") as handle:
            for position in range(0, start, _COPY_CHUNK):
                handle.write(data[position : min(start, position + _COPY_CHUNK)])
        yield copy
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _run_cabextract(
    arguments: list[str], *, timeout: float, cwd: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    try:
        # Runs only after every header check passed; -e UTF-8 names members without the UTF
        # flag exactly as read_cabinet decoded them (it accepts only ASCII or UTF-8).
        return subprocess.run(arguments, capture_output=True, timeout=timeout, check=False, cwd=cwd)
    except subprocess.TimeoutExpired:
        raise PackageError(f"cabextract took longer than {timeout:g} seconds") from None


def _cabextract_refusal(
    completed: subprocess.CompletedProcess[bytes],
    members: list[CabinetMember],
    *,
    failures: dict[str, str],
    source: Path,
    listing: CabinetListing,
) -> PackageError:
    """Refuse naming the first LZX member cabextract failed on and its folder, when it says."""
    for member in members:
        if member.name in failures:
            return PackageError(
                f"the cabinet is corrupt (cannot decompress folder {member.folder}; "
                f"cabextract: {failures[member.name]})",
                member=member.name,
            )
    text = (completed.stderr + b"\n" + completed.stdout).decode("utf-8", "replace")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    reason = lines[-1] if lines else f"exit status {completed.returncode}"
    reason = reason.replace(str(source), _display_name(listing.path))
    return PackageError(f"the cabinet is corrupt (cabextract: {reason})")


def _test_with_cabextract(
    program: str,
    source: Path,
    members: list[CabinetMember],
    timeout: float,
    listing: CabinetListing,
) -> None:
    completed = _run_cabextract(
        [program, "-q", "-t", "-e", "UTF-8", "--", str(source)], timeout=timeout
    )
    results: dict[str, str | None] = {}
    for line in completed.stdout.decode("utf-8", "replace").splitlines():
        if match := _CABEXTRACT_TEST_LINE.match(line):
            results[match["name"]] = match["reason"]
    failures = {name: reason for name, reason in results.items() if reason is not None}
    lzx_failed = any(member.name in failures for member in members)
    # A failed Quantum member alone is no refusal here: Quantum members are skipped.
    if lzx_failed or (completed.returncode != 0 and not failures):
        raise _cabextract_refusal(
            completed, members, failures=failures, source=source, listing=listing
        )
    for member in members:
        if member.name not in results:
            raise PackageError("cabextract did not test the member", member=member.name)


def _extract_with_cabextract(
    program: str,
    source: Path,
    staging: _Staging,
    members: list[CabinetMember],
    timeout: float,
    listing: CabinetListing,
) -> list[ExtractedMember]:
    private = staging.private_directory()
    try:
        # Run inside the private directory so its error lines read "NAME: REASON".
        completed = _run_cabextract(
            [program, "-q", "-e", "UTF-8", "--", str(source)], timeout=timeout, cwd=private
        )
        if completed.returncode != 0:
            failures: dict[str, str] = {}
            for line in completed.stderr.decode("utf-8", "replace").splitlines():
                name, separator, reason = line.rpartition(": ")
                if separator and name not in failures:
                    failures[name] = reason.strip()
            raise _cabextract_refusal(
                completed, members, failures=failures, source=source, listing=listing
            )
        results = []
        for member in members:
            source_file = private / member.name
            try:
                info = os.lstat(source_file)
            except FileNotFoundError:
                raise PackageError(
                    "cabextract did not produce the member", member=member.name
                ) from None
            if not stat.S_ISREG(info.st_mode):
                raise PackageError(
                    "cabextract produced something other than a file", member=member.name
                )
            sink = _Sink(staging, member)
            try:
                with open(source_file, "rb") as source_handle:
                    while chunk := source_handle.read(_COPY_CHUNK):
                        sink.write(chunk)
            finally:
                sink.close()
            results.append(sink.result)
        return results
    finally:
        shutil.rmtree(private, ignore_errors=True)
