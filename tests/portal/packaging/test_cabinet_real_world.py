"""Cabinets made by other tools: signed by osslsigncode (as signtool does), LZX from makecab."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)

from deviceupdate_devtools import builder
from portal.packaging.cabinet import (
    check_cabinet_data,
    extract_cabinet,
    read_cabinet,
    read_cabinet_signature,
)
from portal.packaging.errors import PackageError

Tool = Callable[[str], str]


def files_under(directory: Path) -> dict[str, bytes]:
    return {
        path.relative_to(directory).as_posix(): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


@pytest.fixture
def osslsigncode(
    need_tool: Tool, tmp_path: Path, publisher: builder.Signer
) -> Callable[[Path], Path]:
    """Sign a cabinet with osslsigncode and the test publisher; return the signed copy."""
    program = need_tool("osslsigncode")
    certificate = tmp_path / "publisher.pem"
    key = tmp_path / "publisher.key"
    certificate.write_bytes(publisher.certificate_pem)
    key.write_bytes(publisher.key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))

    def sign(unsigned: Path) -> Path:
        signed = unsigned.with_name(f"signed-{unsigned.name}")
        subprocess.run(
            [program, "sign", "-certs", str(certificate), "-key", str(key)]
            + ["-in", str(unsigned), "-out", str(signed)],
            capture_output=True,
            check=True,
        )
        return signed

    return sign


def extracted_signature(need_tool: Tool, signed: Path) -> bytes:
    """The signature as osslsigncode itself reads it back (DER)."""
    program = need_tool("osslsigncode")
    out = signed.with_suffix(".der")
    subprocess.run(
        [program, "extract-signature", "-in", str(signed), "-out", str(out)],
        capture_output=True,
        check=True,
    )
    return out.read_bytes()


def test_package_signed_by_osslsigncode_is_read_and_extracted(
    tmp_path: Path,
    staging: Path,
    publisher: builder.Signer,
    osslsigncode: Callable[[Path], Path],
    need_tool: Tool,
) -> None:
    update = builder.build_update(signer=publisher, images={"CPE.nbt": 70_000, "boot.nbt": 5})
    unsigned = builder.build_package([update], path=tmp_path / "UCUpdates.cab")
    signed = osslsigncode(unsigned)

    listing = read_cabinet(signed)
    signature = read_cabinet_signature(listing)
    check_cabinet_data(signed, listing)
    extracted = extract_cabinet(signed, staging, listing)

    assert signature == extracted_signature(need_tool, signed)
    assert listing.signature_offset == len(unsigned.read_bytes()) + 24
    assert listing.members == read_cabinet(unsigned).members
    assert files_under(staging) == update.members
    assert {m.name: m.sha256 for m in extracted} == {
        name: hashlib.sha256(data).hexdigest() for name, data in update.members.items()
    }


def test_builder_lays_out_a_signature_exactly_as_osslsigncode(
    tmp_path: Path,
    publisher: builder.Signer,
    osslsigncode: Callable[[Path], Path],
    need_tool: Tool,
) -> None:
    update = builder.build_update(signer=publisher)
    unsigned = builder.build_package([update], path=tmp_path / "UCUpdates.cab")
    signed = osslsigncode(unsigned)
    signature = extracted_signature(need_tool, signed)

    rebuilt = builder.build_package([update], path=tmp_path / "rebuilt.cab", signature=signature)

    assert rebuilt.read_bytes() == signed.read_bytes()
    # And osslsigncode finds the builder's signature where the builder put it.
    assert extracted_signature(need_tool, rebuilt) == signature


def test_lzx_cabinet_signed_by_osslsigncode_is_extracted(
    fixture_cab: Callable[[str], Path],
    tmp_path: Path,
    staging: Path,
    osslsigncode: Callable[[Path], Path],
    need_tool: Tool,
) -> None:
    need_tool("cabextract")
    unsigned = tmp_path / "normal_2files_2folders.cab"
    unsigned.write_bytes(fixture_cab("normal_2files_2folders.cab").read_bytes())
    signed = osslsigncode(unsigned)

    listing = read_cabinet(signed)
    check_cabinet_data(signed, listing)
    extract_cabinet(signed, staging, listing)

    assert read_cabinet_signature(listing) == extracted_signature(need_tool, signed)
    assert [(m.name, m.compression) for m in listing.members] == [
        ("mszip1.txt", "mszip"),
        ("mszip2.txt", "mszip"),
        ("lzx1.txt", "lzx"),
        ("lzx2.txt", "lzx"),
    ]
    assert files_under(staging) == {
        "lzx1.txt": b"This is LZX compressed\n",
        "lzx2.txt": b"This is also LZX compressed\n",
        "mszip1.txt": b"This is compressed with MS-ZIP\n",
        "mszip2.txt": b"This also is compressed with MS-ZIP\n",
    }


def test_data_appended_to_a_signed_cabinet_is_refused(
    tmp_path: Path, publisher: builder.Signer, osslsigncode: Callable[[Path], Path]
) -> None:
    update = builder.build_update(signer=publisher)
    signed = osslsigncode(builder.build_package([update], path=tmp_path / "UCUpdates.cab"))
    tampered = tmp_path / "tampered.cab"
    tampered.write_bytes(signed.read_bytes() + b"MSCF" + bytes(60))

    with pytest.raises(PackageError) as caught:
        read_cabinet(tampered)

    assert caught.value.message == "64 bytes of unexpected data after the cabinet's signature"
