"""The device class value object: its key, query, path and equality ignoring case."""

from __future__ import annotations

import pytest

from portal.choices import DeviceControlKind
from portal.device_class import DeviceClass, RuleClass, class_key
from portal.models import DeviceControl, DeviceUpdateRule, Pool

CX600 = DeviceClass("UCPhone", "Polycom", "CX600", "Rev-1", "ENU")


def make_rule(*classes: str) -> DeviceUpdateRule:
    return DeviceUpdateRule.objects.create(
        pool=Pool.objects.get(), **RuleClass(*classes).as_fields()
    )


def test_key_is_the_class_lower_cased_as_the_decision_table_looks_it_up() -> None:
    assert CX600.key == ("ucphone", "polycom", "cx600", "rev-1", "enu")
    assert class_key("UCPHONE", "polycom", "cx600", "REV-1", "Enu") == CX600.key
    assert RuleClass("UCPhone", "Polycom", "CX600", "Rev-1", "ENU", "CPE").key == (
        ("ucphone", "polycom", "cx600", "rev-1", "enu"),
        "cpe",
    )


def test_classes_are_equal_ignoring_case_and_keep_their_spelling() -> None:
    shouted = DeviceClass("UCPHONE", "POLYCOM", "cx600", "rev-1", "enu")
    assert shouted == CX600
    assert len({shouted, CX600}) == 1
    assert str(shouted) == "UCPHONE/POLYCOM/cx600/rev-1/enu"
    assert DeviceClass("UCPhone", "Polycom", "CX700", "Rev-1", "ENU") != CX600
    cpe = RuleClass("UCPhone", "Polycom", "CX600", "Rev-1", "ENU", "CPE")
    assert RuleClass("ucphone", "polycom", "cx600", "rev-1", "enu", "cpe") == cpe
    assert RuleClass("UCPhone", "Polycom", "CX600", "Rev-1", "ENU", "Firmware") != cpe
    assert cpe.device_class == CX600
    assert cpe != CX600  # a rule's class is not a device class


def test_path_is_the_folder_levels_as_written() -> None:
    assert CX600.path == "UCPhone/Polycom/CX600/Rev-1/ENU"
    assert str(CX600) == CX600.path
    cpe = RuleClass("UCPhone", "Polycom", "CX600", "Rev-1", "ENU", "CPE")
    assert cpe.path == "UCPhone/Polycom/CX600/Rev-1/ENU/CPE"
    assert str(cpe) == cpe.path


def test_from_path_reads_a_class_path_or_an_update_folder() -> None:
    parsed = DeviceClass.from_path("UCPhone/Polycom/CX600/Rev-1/ENU")
    assert (parsed.device_type, parsed.brand, parsed.model, parsed.revision, parsed.locale) == (
        "UCPhone",
        "Polycom",
        "CX600",
        "Rev-1",
        "ENU",
    )
    assert DeviceClass.from_path("UCPhone/Polycom/CX600/Rev-1/ENU/4.0.7577.4387/CPE").path == (
        "UCPhone/Polycom/CX600/Rev-1/ENU"
    )


@pytest.mark.parametrize(
    "path",
    [
        "UCPhone/Polycom/CX600/Rev-1",
        "UCPhone/Polycom/CX600/Rev-1/ENU/4.0.7577.4387",
        "UCPhone/Polycom//Rev-1/ENU",
        "",
    ],
)
def test_from_path_refuses_anything_else(path: str) -> None:
    with pytest.raises(ValueError, match="is not a device class path"):
        DeviceClass.from_path(path)


@pytest.mark.django_db
def test_query_finds_the_rows_of_the_class_ignoring_case() -> None:
    cpe = make_rule("UCPhone", "Polycom", "CX600", "Rev-1", "ENU", "CPE")
    firmware = make_rule("ucphone", "POLYCOM", "cx600", "rev-1", "enu", "Firmware")
    make_rule("UCPhone", "Polycom", "CX700", "Rev-1", "ENU", "CPE")
    make_rule("UCPhone", "Polycom", "CX600", "Rev-2", "ENU", "CPE")
    asked = DeviceClass("UCPHONE", "polycom", "Cx600", "REV-1", "Enu")

    assert set(DeviceUpdateRule.objects.filter(asked.q())) == {cpe, firmware}
    assert set(DeviceUpdateRule.objects.filter(asked.q(exact_first=True))) == {cpe, firmware}
    rule_class = RuleClass("UCPHONE", "polycom", "Cx600", "REV-1", "Enu", "cpe")
    assert list(DeviceUpdateRule.objects.filter(rule_class.q())) == [cpe]


@pytest.mark.django_db
def test_query_with_a_prefix_reaches_the_class_through_a_relation() -> None:
    cpe = make_rule("UCPhone", "Polycom", "CX600", "Rev-1", "ENU", "CPE")
    other = make_rule("UCPhone", "Polycom", "CX700", "Rev-1", "ENU", "CPE")
    held = DeviceControl.objects.create(
        identity="MAC:0004F2000001", rule=cpe, kind=DeviceControlKind.HOLD, actor_name="tests"
    )
    DeviceControl.objects.create(
        identity="MAC:0004F2000001", rule=other, kind=DeviceControlKind.HOLD, actor_name="tests"
    )
    asked = RuleClass("ucphone", "polycom", "cx600", "rev-1", "enu", "CPE")

    assert list(DeviceControl.objects.filter(asked.q("rule__"))) == [held]
    assert list(DeviceControl.objects.filter(asked.device_class.q(prefix="rule__"))) == [held]


@pytest.mark.django_db
def test_of_reads_the_class_a_row_names() -> None:
    rule = make_rule("UCPhone", "Polycom", "CX600", "Rev-1", "ENU", "CPE")

    assert DeviceClass.of(rule) == CX600
    assert RuleClass.of(rule).as_fields() == {
        "device_type": "UCPhone",
        "brand": "Polycom",
        "model": "CX600",
        "revision": "Rev-1",
        "locale": "ENU",
        "update_type": "CPE",
    }
    assert rule.device_class == "UCPhone/Polycom/CX600/Rev-1/ENU/CPE"
