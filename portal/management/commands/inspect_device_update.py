"""Explain a package or a catalog without importing it: `inspect_device_update PATH [--json]`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from portal.errors import DomainError
from portal.management.base import ProjectCommand, readable_file
from portal.services.imports import package_inspect


class Command(ProjectCommand):
    help = (
        "Show what a device update package (.cab) or security catalog (.cat) holds and the "
        "verdict its import would reach against the trusted publishers, with the reason. "
        "Writes nothing. Exits 1 when the import would refuse it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path, help="a package (.cab) or a catalog (.cat)")
        parser.add_argument("--json", action="store_true", help="machine-readable output")
        parser.add_argument(
            "--members", action="store_true", help="also list every member of the cabinet"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path = readable_file(options["path"])
        try:
            with path.open("rb") as source:
                report = package_inspect(source=source, filename=path.name)
        except DomainError as error:
            raise CommandError(error.message) from None
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2))
        else:
            self.stdout.write("\n".join(render_report(report, members=options["members"])))
        if report["verdict"] != "accepted":
            raise SystemExit(1)


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
            f"  member {m['name']}  {m['digest_algorithm']} {m['digest']}"
            for m in report["catalog"]["members"]
        ]
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
    if catalog["signature"]:
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
    return lines


def _signature_lines(signature: dict[str, Any], label: str) -> list[str]:
    signer = signature["signer"]
    when = signature["signing_time"] or "no signing time"
    source = f" ({signature['signing_time_source']})" if signature["signing_time_source"] else ""
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
