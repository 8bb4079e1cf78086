"""The test package builder makes packages the readers accept end to end."""

from __future__ import annotations

from pathlib import Path

from deviceupdate_devtools import builder
from portal.packaging.cabinet import extract_cabinet, read_cabinet
from portal.packaging.catalog import verify_catalog
from portal.packaging.description import check_description_matches_folder, parse_description


def test_built_package_reads_extracts_and_verifies(
    tmp_path: Path, staging: Path, ca: builder.Signer, publisher: builder.Signer
) -> None:
    update = builder.build_update(
        signer=publisher, images={"CPE.nbt": 50_000, "CPE2.nbt": 100}, version="4.0.7577.4400"
    )
    path = builder.build_package(
        [update], path=tmp_path / "UCUpdates.cab", extra_members={"readme.txt": b"hi"}
    )

    extracted = extract_cabinet(path, staging, read_cabinet(path))
    folder = "UCPhone/Polycom/CX600/Rev-1/ENU/4.0.7577.4400/CPE"
    in_folder = {m.name.rsplit("/", 1)[1]: m for m in extracted if m.name.startswith(folder + "/")}
    description = parse_description((staging / folder / "CPE.xml").read_bytes())
    check_description_matches_folder(description, folder=folder, file_names=list(in_folder))
    result = verify_catalog(
        (staging / folder / "CPE.cat").read_bytes(),
        files={name: member.path for name, member in in_folder.items()},
        trusted_publishers=[ca.certificate_der],
        catalog_name="CPE.cat",
        known_sha256={name: member.sha256 for name, member in in_folder.items()},
    )

    assert sorted(m.name for m in extracted) == sorted(
        [*(f"{folder}/{n}" for n in ("CPE.cat", "CPE.nbt", "CPE2.nbt", "CPE.xml")), "readme.txt"]
    )
    assert description.images == ("CPE.nbt", "CPE2.nbt")
    assert [m.name for m in result.members] == ["CPE.nbt", "CPE.xml", "CPE2.nbt"]
    assert (staging / folder / "CPE.nbt").read_bytes() == builder.nbt_image(
        f"{folder}/CPE.nbt", 50_000
    )


def test_builds_are_deterministic_for_the_same_signer(
    tmp_path: Path, publisher: builder.Signer
) -> None:
    first = builder.build_package(
        [builder.build_update(signer=publisher)], path=tmp_path / "first.cab"
    )
    second = builder.build_package(
        [builder.build_update(signer=publisher)], path=tmp_path / "second.cab"
    )

    assert first.read_bytes() == second.read_bytes()


def test_images_are_deterministic_and_sized() -> None:
    assert builder.nbt_image("CPE.nbt", 1000) == builder.nbt_image("CPE.nbt", 1000)
    assert builder.nbt_image("CPE.nbt", 1000) != builder.nbt_image("other.nbt", 1000)
    assert len(builder.nbt_image("CPE.nbt", 12_345)) == 12_345
