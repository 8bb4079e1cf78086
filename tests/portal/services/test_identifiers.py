"""MAC addresses, serial numbers and versions: what is accepted and its normal form."""

from __future__ import annotations

import pytest

from portal.identifiers import normalise_mac, normalise_serial, normalise_version, parse_version


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("00-04-f2-11-22-33", "0004F2112233"),
        ("00:04:F2:11:22:33", "0004F2112233"),
        ("0004f2112233", "0004F2112233"),
        ("00-04-F2-11-22-33-44-55", "0004F2112233" + "4455"),
    ],
)
def test_mac_addresses_are_normalised(raw: str, normal: str) -> None:
    assert normalise_mac(raw) == normal


@pytest.mark.parametrize(
    "raw", ["00-04-F2-11-22", "00-04:F2-11-22-33", "0004F211223", "00-04-F2-11-22-3G", "", "0-4"]
)
def test_malformed_mac_addresses_are_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="is not a MAC address"):
        normalise_mac(raw)


def test_serial_numbers_keep_their_form_and_refuse_other_characters() -> None:
    assert normalise_serial(" CX6-0012345_a ") == "CX6-0012345_a"
    for bad in ["CX6 001", "CX6/001", "", "x" * 65]:
        with pytest.raises(ValueError, match="is not a serial number"):
            normalise_serial(bad)


def test_versions_compare_by_their_integer_parts() -> None:
    assert normalise_version("4.0.7577.04387") == "4.0.7577.4387"
    assert parse_version("4.0.7577.4387") == (4, 0, 7577, 4387)
    for bad in ["4.0-beta", "", "4..0", "1" * 10, "1.2.3.4.5.6.7.8.9"]:
        with pytest.raises(ValueError, match="is not a version"):
            parse_version(bad)
