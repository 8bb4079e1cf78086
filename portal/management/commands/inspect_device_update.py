"""Explain a package or a catalog without importing it:
`inspect_device_update PATH [--files PATH ...] [--members] [--json]`."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from django.core.management.base import CommandParser

from portal.management.base import ProjectCommand, readable_file, usage_error
from portal.services.imports import package_inspect


class Command(ProjectCommand):
    help = (
        "Show what a device update package (.cab) or security catalog (.cat) holds and the "
        "verdict its import would reach against the trusted publishers, with the reason. "
        "With --files, a lone catalog is checked against those files (or a folder's). "
        "Writes nothing. A refusal prints one 'error: ...' line and exits 1 (usage: 2)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path, help="a package (.cab) or a catalog (.cat)")
        parser.add_argument("--json", action="store_true", help="machine-readable output")
        parser.add_argument(
            "--members", action="store_true", help="also list every member of the cabinet"
        )
        parser.add_argument(
            "--files",
            nargs="+",
            type=Path,
            metavar="PATH",
            help="a lone catalog's member files, or a folder holding them",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path = readable_file(options["path"])
        files = _member_files(options["files"]) if options["files"] else None
        with contextlib.ExitStack() as stack:
            sources = {name: stack.enter_context(p.open("rb")) for name, p in (files or {}).items()}
            with path.open("rb") as source:  # a DomainError becomes the one-line refusal
                report = package_inspect(
                    source=source, filename=path.name, files=sources if files else None
                )
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2))
        else:
            self.stdout.write("\n".join(render_report(report, members=options["members"])))
        if report["verdict"] != "accepted":
            self.refuse(report["reason"])


def _member_files(paths: list[Path]) -> dict[str, Path]:
    """The files given, a folder standing for the files directly in it, by file name."""
    found: dict[str, Path] = {}
    for given in paths:
        if given.is_dir():
            members = sorted(p for p in given.iterdir() if p.is_file())
        else:
            members = [readable_file(given)]
        for member in members:
            if member.name.casefold() in {name.casefold() for name in found}:
                raise usage_error(f"{member}: two files are named {member.name}")
            found[member.name] = readable_file(member)
    return found


def render_report(report: dict[str, Any], *, members: bool = False) -> list[str]:
    """The report as one screen of text (a line per folder, update, catalog and finding)."""
    lines = [
        f"{report['kind']} {report['name']}  {report['size']:,} bytes  sha256 {report['sha256']}",
        _verdict_line(report),
    ]
    cabinet = report.get("cabinet")
    if cabinet:
        folders = cabinet["folders"]
        lines.append(
            f"cabinet: {len(folders)} folder(s), {len(cabinet['members'])} member(s), "
            f"{cabinet['total_member_size']:,} bytes uncompressed"
        )
        lines += [
            f"  folder {f['index']}: {f['compression']}, {f['blocks']} block(s), "
            f"{f['size']:,} bytes"
            for f in folders
        ]
        if cabinet["signature"]:
            lines += _signature_lines(cabinet["signature"], "cabinet signed")
        if members:
            lines += [
                f"  {m['name']}  {m['size']:,} bytes  folder {m['folder']}"
                for m in cabinet["members"]
            ]
    for update in report.get("updates", []):
        lines.append(f"update {update['folder']}: {_verdict_text(update)}")
        description = update["description"]
        if description:
            released = (
                f", released {description['release_date']}" if description["release_date"] else ""
            )
            lines.append(
                f"  rule {description['id']}: {description['device_type']} "
                f"{description['brand']} {description['model']} {description['revision']} "
                f"{description['locale']} {description['update_type']} "
                f"version {description['version']}{released}"
            )
        lines += [
            f"  {file['name']}  {file['size']:,} bytes  sha256 {file['sha256']}"
            for file in update["files"]
        ]
        if update["catalog"]:
            lines += _catalog_lines(update["catalog"])
    if report["kind"] == "catalog" and report["catalog"]:
        lines += _catalog_lines(report["catalog"])
        lines += [
            f"  member {m['name'] or '(unnamed)'}  {m['kind']} "
            f"{m['digest_algorithm']} {m['digest']}"
            for m in report["catalog"]["members"]
        ]
        lines += _check_lines(report["catalog"])
    lines += [f"ignored: {text}" for text in report.get("ignored", [])]
    lines += [f"warning: {text}" for text in report["warnings"]]
    return lines


def _verdict_text(part: dict[str, Any]) -> str:
    return part["verdict"] + (f": {part['reason']}" if part["reason"] else "")


def _verdict_line(report: dict[str, Any]) -> str:
    return f"verdict: the import would be {_verdict_text(report)}"


def _catalog_lines(catalog: dict[str, Any]) -> list[str]:
    lines = [
        f"  catalog v{catalog['catalog_version']}, member hashes "
        f"{', '.join(catalog['member_digests']) or 'none'}: {_verdict_text(catalog)}"
    ]
    signatures = catalog.get("signatures") or []
    if len(signatures) > 1:
        for index, signature in enumerate(signatures):
            used = " (used)" if index == catalog["signature_used"] else ""
            label = f"    signature {index + 1}{' nested' if signature['nested'] else ''}{used}"
            lines += _signature_lines(signature, f"{label}: signed")
    elif catalog["signature"]:
        lines += _signature_lines(catalog["signature"], "    signed")
    found = [
        f"{len(catalog[key])} {key}"
        for key in ("matched", "mismatched", "missing", "unlisted")
        if catalog[key] or key == "matched"
    ]
    lines.append(f"    members: {len(catalog['members'])} listed; {', '.join(found)}")
    for key in ("mismatched", "missing", "unlisted"):
        if catalog[key]:
            lines.append(f"    {key}: {', '.join(catalog[key])}")
    if catalog.get("unmatched_entries"):
        lines.append(f"    unnamed entries matching no file: {len(catalog['unmatched_entries'])}")
    return lines


def _check_lines(catalog: dict[str, Any]) -> list[str]:
    """Per file and per entry: the verdict, the entry and the hash kind."""
    lines = []
    for check in catalog.get("checks") or []:
        hashed = f"{check['kind']} {check['digest_algorithm']}".strip()
        what = check["file"] or "(no file)"
        entry = f" entry {check['entry']}" if check["entry"] and check["entry"] != what else ""
        lines.append(f"  {check['status']}: {what}{entry}{f' ({hashed})' if hashed else ''}")
    return lines


def _signature_lines(signature: dict[str, Any], label: str) -> list[str]:
    signer = signature["signer"]
    when = signature["signing_time"] or "no signing time"
    source = f" ({signature['signing_time_source']})" if signature["signing_time_source"] else ""
    if signer is None and not signature["signature_digest"]:
        return [f"{label.rsplit('signed', 1)[0]}unsigned: the catalog carries no signature"]
    lines = [
        f"{label} by {signer['subject'] if signer else 'an unknown signer'} at {when}{source}, "
        f"{signature['signature_digest']} {signature['signature_scheme']}"
    ]
    indent = " " * (len(label) - len(label.lstrip()) + 2)
    if signature["program_name"] or signature["program_url"]:
        program = f"{signature['program_name'] or '-'} {signature['program_url']}"
        lines.append(f"{indent}program: {program.rstrip()}")
    for certificate in signature["chain"]:
        lines.append(
            f"{indent}chain: {certificate['subject']} (valid {certificate['not_before']} to "
            f"{certificate['not_after']})"
        )
    for stamp in signature["timestamps"]:
        imprint = {True: "matches", False: "DOES NOT MATCH", None: "not checked"}[
            stamp["imprint_matches"]
        ]
        lines.append(
            f"{indent}timestamp ({stamp['kind']}): {stamp['time'] or '?'} by "
            f"{stamp['authority'] or 'an unknown authority'}, imprint {imprint}"
        )
    return lines
