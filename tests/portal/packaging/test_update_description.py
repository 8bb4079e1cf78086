"""The update description: safe parsing and agreement with its folder."""

from __future__ import annotations

import datetime
import uuid

import pytest

from deviceupdate_devtools import builder
from portal.packaging.description import (
    UpdateDescription,
    check_description_matches_folder,
    parse_description,
)
from portal.packaging.errors import PackageError

FOLDER = "UCPhone/Polycom/CX600/Rev-1/ENU/4.0.7577.4387/CPE"
SPEC_EXAMPLE = b"""<?xml version="1.0" encoding="utf-8"?>
<DeviceUpdate>
  <Id>2de8cbf6-8a1e-4bc0-9d9e-0b2b5a1c1f11</Id>
  <DeviceType>UCPhone</DeviceType>
  <Brand>Polycom</Brand>
  <Model>CX600</Model>
  <Revision>Rev-1</Revision>
  <Locale>ENU</Locale>
  <UpdateType>CPE</UpdateType>
  <Version>4.0.7577.4387</Version>
  <ReleaseDate>2013-04-15</ReleaseDate>
  <Description>Cumulative update 8</Description>
  <Images>
    <Image>CPE.nbt</Image>
  </Images>
</DeviceUpdate>
"""


def refusal(data: bytes) -> PackageError:
    with pytest.raises(PackageError) as caught:
        parse_description(data, member="CPE.xml")
    return caught.value


def test_spec_example_is_parsed_exactly() -> None:
    description = parse_description(SPEC_EXAMPLE)

    assert description == UpdateDescription(
        id=uuid.UUID("2de8cbf6-8a1e-4bc0-9d9e-0b2b5a1c1f11"),
        device_type="UCPhone",
        brand="Polycom",
        model="CX600",
        revision="Rev-1",
        locale="ENU",
        update_type="CPE",
        version="4.0.7577.4387",
        release_date=datetime.date(2013, 4, 15),
        description="Cumulative update 8",
        images=("CPE.nbt",),
    )
    assert description.folder == FOLDER
    assert description.version_key == (4, 0, 7577, 4387)


def test_optional_fields_may_be_left_out_and_braced_guids_are_accepted() -> None:
    data = builder.description_xml(
        update_id="{2DE8CBF6-8A1E-4BC0-9D9E-0B2B5A1C1F11}",
        device_type="UCPhone",
        brand="Polycom",
        model="CX600",
        revision="Rev-1",
        locale="ENU",
        update_type="CPE",
        version="4.0",
        images=["a.nbt", "b.nbt"],
        release_date=None,
        description=None,
    )

    description = parse_description(data)

    assert description.id == uuid.UUID("2de8cbf6-8a1e-4bc0-9d9e-0b2b5a1c1f11")
    assert (description.release_date, description.description) == (None, None)
    assert description.images == ("a.nbt", "b.nbt")


@pytest.mark.parametrize(
    "data",
    [
        b'<?xml version="1.0"?><!DOCTYPE DeviceUpdate [<!ELEMENT DeviceUpdate ANY>]>'
        b"<DeviceUpdate/>",
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
        b"<DeviceUpdate><Id>&b;</Id></DeviceUpdate>",
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b"<DeviceUpdate><Id>&x;</Id></DeviceUpdate>",
    ],
    ids=["dtd", "entity-expansion", "external-entity"],
)
def test_dtds_and_entities_are_refused(data: bytes) -> None:
    error = refusal(data)

    assert error.message == (
        "CPE.xml: the description contains a DTD or entity declaration, which is refused"
    )


@pytest.mark.parametrize(
    ("replace", "by", "message"),
    [
        (b"</DeviceUpdate>", b"", "the description is not well-formed XML (no element found"),
        (b"<Id>2de8cbf6-8a1e-4bc0-9d9e-0b2b5a1c1f11</Id>", b"", "the description has no Id"),
        (b"2de8cbf6-8a1e", b"not-a-guid", "the description's Id 'not-a-guid-4bc0-"),
        (b"4.0.7577.4387", b"4.0 beta", "the description's Version '4.0 beta' is not"),
        (b"2013-04-15", b"15/04/2013", "the description's ReleaseDate '15/04/2013' is not"),
        (b"<Brand>Polycom</Brand>", b"<Brand>../x</Brand>", "the description's Brand '../x'"),
        (b"<Model>CX600</Model>", b"<Model>A</Model><Model>B</Model>", "the description has 2"),
        (b"<Image>CPE.nbt</Image>", b"", "the description lists no image"),
        (b"<Image>CPE.nbt</Image>", b"<Image>a/b.nbt</Image>", "the image name 'a/b.nbt'"),
        (b"<Image>CPE.nbt</Image>", b"<Image>A.nbt</Image><Image>a.NBT</Image>", "the image"),
        (b"DeviceUpdate>", b"Update>", "the description's root element is Update"),
    ],
)
def test_malformed_descriptions_are_refused(replace: bytes, by: bytes, message: str) -> None:
    assert replace in SPEC_EXAMPLE

    error = refusal(SPEC_EXAMPLE.replace(replace, by))

    assert error.member == "CPE.xml"
    assert error.message.startswith(f"CPE.xml: {message}")


def test_description_matching_its_folder_passes() -> None:
    description = parse_description(SPEC_EXAMPLE)

    check_description_matches_folder(
        description, folder=FOLDER, file_names=["CPE.xml", "CPE.cat", "CPE.nbt"]
    )


@pytest.mark.parametrize(
    ("folder", "message"),
    [
        (
            "UCPhone/Yealink/CX600/Rev-1/ENU/4.0.7577.4387/CPE",
            "the description's Brand is 'Polycom' but the folder says 'Yealink'",
        ),
        (
            "UCPhone/Polycom/CX600/Rev-1/ENU/4.0.7577.4388/CPE",
            "the description's Version is '4.0.7577.4387' but the folder says '4.0.7577.4388'",
        ),
        (
            "UCPhone/Polycom/CX600/Rev-1/enu/4.0.7577.4387/CPE",
            "the description's Locale is 'ENU' but the folder says 'enu'",
        ),
        (
            "Polycom/CX600/Rev-1/ENU/4.0.7577.4387/CPE",
            "the update folder Polycom/CX600/Rev-1/ENU/4.0.7577.4387/CPE does not have the 7 "
            "levels <DeviceType>/<Brand>/<Model>/<Revision>/<Locale>/<Version>/<UpdateType>",
        ),
    ],
)
def test_mismatched_folder_is_refused(folder: str, message: str) -> None:
    description = parse_description(SPEC_EXAMPLE)

    with pytest.raises(PackageError) as caught:
        check_description_matches_folder(
            description, folder=folder, file_names=["CPE.nbt"], member="CPE.xml"
        )

    assert caught.value.message == f"CPE.xml: {message}"


@pytest.mark.parametrize(
    ("file_names", "message"),
    [
        (["CPE.xml", "CPE.cat"], "the description lists images missing from the folder: CPE.nbt"),
        (
            ["CPE.nbt", "extra.nbt", "boot.NBT"],
            "the folder has images the description does not list: boot.NBT, extra.nbt",
        ),
    ],
)
def test_image_list_mismatch_is_refused(file_names: list[str], message: str) -> None:
    description = parse_description(SPEC_EXAMPLE)

    with pytest.raises(PackageError) as caught:
        check_description_matches_folder(description, folder=FOLDER, file_names=file_names)

    assert caught.value.message == message
