"""Security catalog verification: signature, chain at signing time, exact member set."""

from __future__ import annotations

import datetime
import hashlib
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from asn1crypto import cms

from deviceupdate_devtools import builder
from portal.packaging.catalog import CatalogMember, CatalogVerification, verify_catalog
from portal.packaging.errors import PackageError

UTC = datetime.UTC
Tool = Callable[[str], str]


def write_folder(directory: Path, files: dict[str, bytes]) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, data in files.items():
        (directory / name).write_bytes(data)
        paths[name] = directory / name
    return paths


def verify(
    update: builder.TestUpdate,
    tmp_path: Path,
    trusted: list[bytes],
    *,
    catalog: bytes | None = None,
    refuse_sha1: bool = False,
) -> CatalogVerification:
    paths = write_folder(tmp_path / "folder", update.files)
    return verify_catalog(
        update.files["CPE.cat"] if catalog is None else catalog,
        files=paths,
        trusted_publishers=trusted,
        catalog_name="CPE.cat",
        refuse_sha1=refuse_sha1,
    )


def refusal(
    update: builder.TestUpdate, tmp_path: Path, trusted: list[bytes], **options: object
) -> PackageError:
    with pytest.raises(PackageError) as caught:
        verify(update, tmp_path, trusted, **options)  # type: ignore[arg-type]
    return caught.value


def flip_byte_of(data: bytes, needle: bytes) -> bytes:
    start = data.index(needle)
    position = start + len(needle) - 1
    return data[:position] + bytes([data[position] ^ 0x01]) + data[position + 1 :]


def test_good_catalog_verifies(
    tmp_path: Path, ca: builder.Signer, publisher: builder.Signer
) -> None:
    update = builder.build_update(signer=publisher, images={"CPE.nbt": 3000, "boot.nbt": 10})

    result = verify(update, tmp_path, [ca.certificate_der])

    assert result == CatalogVerification(
        signer_subject="CN=Device Update Test Publisher,O=Device Update Tests",
        signer_fingerprint=hashlib.sha256(publisher.certificate_der).hexdigest(),
        signing_time=datetime.datetime(2024, 1, 1, tzinfo=UTC),
        signing_time_source="signingTime",
        digest_algorithm="sha256",
        members=tuple(
            CatalogMember(name, "sha256", hashlib.sha256(update.files[name]).hexdigest())
            for name in ("CPE.nbt", "CPE.xml", "boot.nbt")
        ),
        warnings=(),
    )


def test_trusted_publisher_may_be_pem_or_the_signer_itself(
    tmp_path: Path, ca: builder.Signer, publisher: builder.Signer
) -> None:
    update = builder.build_update(signer=publisher)

    assert verify(update, tmp_path / "a", [ca.certificate_pem]).digest_algorithm == "sha256"
    assert verify(update, tmp_path / "b", [publisher.certificate_der]).members[0].name == "CPE.nbt"


def test_ecdsa_signer_through_an_intermediate_verifies(tmp_path: Path, ca: builder.Signer) -> None:
    intermediate = builder.make_test_ca(common_name="Intermediate CA", issuer=ca, key_type="ec")
    signer = builder.make_publisher(intermediate, common_name="EC Publisher", key_type="ec")
    update = builder.build_update(signer=signer)

    result = verify(update, tmp_path, [ca.certificate_der])

    assert result.signer_subject == "CN=EC Publisher,O=Device Update Tests"


def test_this_update_counts_when_there_is_no_signing_time(
    tmp_path: Path, ca: builder.Signer, publisher: builder.Signer
) -> None:
    update = builder.build_update(signer=publisher, signing_time=None)

    result = verify(update, tmp_path, [ca.certificate_der])

    assert (result.signing_time, result.signing_time_source) == (
        datetime.datetime(2024, 1, 1, tzinfo=UTC),
        "thisUpdate",
    )


def test_signer_from_another_ca_is_refused(tmp_path: Path, publisher: builder.Signer) -> None:
    other_ca = builder.make_test_ca(common_name="Device Update Test CA", key_type="ec")
    update = builder.build_update(signer=publisher)

    error = refusal(update, tmp_path, [other_ca.certificate_der])

    assert error.message == (
        "the catalog's signer does not chain to a trusted publisher "
        "(CN=Device Update Test Publisher,O=Device Update Tests)"
    )


def test_no_trusted_publisher_is_refused(tmp_path: Path, publisher: builder.Signer) -> None:
    update = builder.build_update(signer=publisher)

    assert refusal(update, tmp_path, []).message == "no trusted publisher certificate is configured"


def test_signer_issued_by_a_non_ca_is_refused(tmp_path: Path, publisher: builder.Signer) -> None:
    # A leaf that signs another "publisher" must not act as a certificate authority.
    impostor = builder.make_publisher(publisher, common_name="Impostor")
    update = builder.build_update(signer=impostor)

    error = refusal(update, tmp_path, [publisher.certificate_der])

    assert error.message == (
        "certificate CN=Device Update Test Publisher,O=Device Update Tests may not issue "
        "certificates (key usage)"
    )


def test_tampered_file_is_refused(
    tmp_path: Path, ca: builder.Signer, publisher: builder.Signer
) -> None:
    update = builder.build_update(signer=publisher)
    update.files["CPE.nbt"] = update.files["CPE.nbt"][:-1] + b"!"

    error = refusal(update, tmp_path, [ca.certificate_der])

    assert error.member == "CPE.nbt"
    assert error.message == "CPE.nbt: the file's hash does not match the security catalog"


def test_missing_member_is_refused(
    tmp_path: Path, ca: builder.Signer, publisher: builder.Signer
) -> None:
    update = builder.build_update(signer=publisher, images={"CPE.nbt": 10, "extra.nbt": 10})
    del update.files["extra.nbt"]

    error = refusal(update, tmp_path, [ca.certificate_der])

    assert error.message == (
        "extra.nbt: the security catalog lists a file that is missing from the update folder"
    )


def test_file_not_in_catalog_is_refused(
    tmp_path: Path, ca: builder.Signer, publisher: builder.Signer
) -> None:
    update = builder.build_update(signer=publisher)
    update.files["readme.txt"] = b"not signed"

    error = refusal(update, tmp_path, [ca.certificate_der])

    assert error.message == "readme.txt: the file is not listed in the security catalog"


def test_member_names_match_case_insensitively_like_windows(
    tmp_path: Path, ca: builder.Signer, publisher: builder.Signer
) -> None:
    update = builder.build_update(signer=publisher)
    update.files["cpe.NBT"] = update.files.pop("CPE.nbt")

    assert [m.name for m in verify(update, tmp_path, [ca.certificate_der]).members] == [
        "CPE.nbt",
        "CPE.xml",
    ]


def test_tampered_signature_is_refused(
    tmp_path: Path, ca: builder.Signer, publisher: builder.Signer
) -> None:
    update = builder.build_update(signer=publisher)
    catalog = update.files["CPE.cat"]
    signature = cms.ContentInfo.load(catalog)["content"]["signer_infos"][0]["signature"].native

    error = refusal(
        update, tmp_path, [ca.certificate_der], catalog=flip_byte_of(catalog, signature)
    )

    assert error.message == "the catalog's signature is not valid"


def test_tampered_trust_list_is_refused(
    tmp_path: Path, ca: builder.Signer, publisher: builder.Signer
) -> None:
    # A forger rewrites a member hash inside the trust list but cannot re-sign it.
    update = builder.build_update(signer=publisher)
    catalog = update.files["CPE.cat"]
    forged = flip_byte_of(catalog, hashlib.sha256(update.files["CPE.nbt"]).digest())

    error = refusal(update, tmp_path, [ca.certificate_der], catalog=forged)

    assert error.message == "the catalog's content does not match its signed digest"


def test_expired_now_but_valid_at_signing_time_is_accepted(
    tmp_path: Path, ca: builder.Signer
) -> None:
    signer = builder.make_publisher(
        ca,
        not_before=datetime.datetime(2023, 1, 1, tzinfo=UTC),
        not_after=datetime.datetime(2023, 12, 31, tzinfo=UTC),
    )
    signed_at = datetime.datetime(2023, 6, 1, 12, tzinfo=UTC)
    update = builder.build_update(signer=signer, signing_time=signed_at)

    result = verify(update, tmp_path, [ca.certificate_der])

    assert result.signing_time == signed_at
    assert signer.certificate.not_valid_after_utc < datetime.datetime.now(tz=UTC)


@pytest.mark.parametrize(
    "signed_at",
    [datetime.datetime(2022, 12, 31, tzinfo=UTC), datetime.datetime(2024, 1, 2, tzinfo=UTC)],
    ids=["not-yet-valid", "already-expired"],
)
def test_signing_outside_the_certificate_validity_is_refused(
    tmp_path: Path, ca: builder.Signer, signed_at: datetime.datetime
) -> None:
    signer = builder.make_publisher(
        ca,
        not_before=datetime.datetime(2023, 1, 1, tzinfo=UTC),
        not_after=datetime.datetime(2023, 12, 31, tzinfo=UTC),
    )
    update = builder.build_update(signer=signer, signing_time=signed_at)

    error = refusal(update, tmp_path, [ca.certificate_der])

    assert error.message == (
        "certificate CN=Device Update Test Publisher,O=Device Update Tests was not valid at the "
        f"catalog's signing time {signed_at.isoformat()} (valid 2023-01-01T00:00:00+00:00 to "
        "2023-12-31T00:00:00+00:00)"
    )


def test_sha1_catalog_is_accepted_with_a_warning(
    tmp_path: Path, ca: builder.Signer, publisher: builder.Signer
) -> None:
    update = builder.build_update(signer=publisher, digest="sha1")

    result = verify(update, tmp_path, [ca.certificate_der])

    assert result.digest_algorithm == "sha1"
    assert result.warnings == ("the catalog uses SHA-1; ask the vendor for a SHA-256 catalog",)
    assert result.members[0] == CatalogMember(
        "CPE.nbt", "sha1", hashlib.sha1(update.files["CPE.nbt"], usedforsecurity=False).hexdigest()
    )


def test_sha1_catalog_is_refused_when_the_setting_says_so(
    tmp_path: Path, ca: builder.Signer, publisher: builder.Signer
) -> None:
    update = builder.build_update(signer=publisher, digest="sha1")

    error = refusal(update, tmp_path, [ca.certificate_der], refuse_sha1=True)

    assert error.message == "the catalog uses SHA-1, which the settings refuse"


@pytest.mark.parametrize(
    ("catalog", "message"),
    [
        (b"", "the catalog is not a valid security catalog (Insufficient data"),
        (b"not a catalog", "the catalog is not a valid security catalog (Insufficient data"),
        (bytes.fromhex("300d06092a864886f70d010701a000"), "the catalog is not PKCS #7 signed data"),
    ],
    ids=["empty", "text", "pkcs7-data"],
)
def test_non_catalogs_are_refused(
    tmp_path: Path, ca: builder.Signer, publisher: builder.Signer, catalog: bytes, message: str
) -> None:
    update = builder.build_update(signer=publisher)

    error = refusal(update, tmp_path, [ca.certificate_der], catalog=catalog)

    assert error.message.startswith(message)


def test_known_sha256_spares_rehashing(
    tmp_path: Path, ca: builder.Signer, publisher: builder.Signer
) -> None:
    update = builder.build_update(signer=publisher)
    paths = write_folder(tmp_path, update.files)
    known = {name: hashlib.sha256(data).hexdigest() for name, data in update.files.items()}
    paths["CPE.nbt"].unlink()  # proves the known hash is used instead of the file

    result = verify_catalog(
        update.files["CPE.cat"],
        files=paths,
        trusted_publishers=[ca.certificate_der],
        catalog_name="CPE.cat",
        known_sha256=known,
    )

    assert [m.name for m in result.members] == ["CPE.nbt", "CPE.xml"]


def test_osslsigncode_accepts_the_builders_catalog(tmp_path: Path, need_tool: Tool) -> None:
    osslsigncode = need_tool("osslsigncode")
    # osslsigncode judges validity now, so this chain is valid today.
    now = datetime.datetime.now(tz=UTC).replace(microsecond=0)
    day = datetime.timedelta(days=1)
    ca = builder.make_test_ca(not_before=now - day, not_after=now + 30 * day)
    signer = builder.make_publisher(ca, not_before=now - day, not_after=now + 10 * day)
    update = builder.build_update(signer=signer, signing_time=now)
    catalog = tmp_path / "CPE.cat"
    catalog.write_bytes(update.files["CPE.cat"])
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(ca.certificate_pem)

    completed = subprocess.run(
        [osslsigncode, "verify", "-in", str(catalog), "-CAfile", str(ca_file)],
        capture_output=True,
        text=True,
        check=False,
    )

    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "Signature verification: ok" in completed.stdout
    assert verify(update, tmp_path / "ours", [ca.certificate_der]).signing_time == now


@pytest.mark.parametrize(
    ("cut", "message"),
    [
        (slice(None, -40), "the catalog is not a valid security catalog (Insufficient data"),
        (slice(None, None), "the catalog is not a valid security catalog (Extra data"),
    ],
    ids=["truncated", "trailing-data"],
)
def test_malformed_catalogs_are_refused_in_one_short_line(
    tmp_path: Path, ca: builder.Signer, publisher: builder.Signer, cut: slice, message: str
) -> None:
    update = builder.build_update(signer=publisher)
    catalog = update.files["CPE.cat"][cut] + (b"" if cut.stop else b"\0\0")

    error = refusal(update, tmp_path, [ca.certificate_der], catalog=catalog)

    assert error.message.startswith(message)
    assert "\n" not in error.message
    assert len(error.message) < 200
