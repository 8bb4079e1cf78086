"""The strict environment readers: exact values and exact one-line errors."""

from pathlib import Path

import pytest

from deviceupdate.env import ConfigError, Env


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("true", True), ("false", False), (" true ", True), ("", True), ("  ", True)],
)
def test_bool_reads_true_and_false_and_empty_means_default(raw: str, expected: bool) -> None:
    assert Env({"DEBUG": raw}).boolean("DEBUG", True) is expected


@pytest.mark.parametrize(
    "raw", ["maybe", "True", "TRUE", "False", "yes", "no", "on", "off", "1", "0", "t", "f"]
)
def test_bool_refuses_anything_else_naming_the_variable(raw: str) -> None:
    with pytest.raises(ConfigError) as error:
        Env({"DEBUG": raw}).boolean("DEBUG", False)
    assert str(error.value) == f"configuration error: DEBUG: expected true or false, got {raw!r}"


def test_int_checks_range_and_type() -> None:
    env = Env({"N": "70", "M": "x"})
    assert env.integer("MISSING", 5, minimum=1, maximum=10) == 5
    with pytest.raises(ConfigError, match=r"^configuration error: N: expected 1 to 60, got 70$"):
        env.integer("N", 5, minimum=1, maximum=60)
    with pytest.raises(ConfigError, match=r"^configuration error: M: expected an integer"):
        env.integer("M", 5, minimum=1, maximum=60)


def test_url_refuses_unknown_scheme() -> None:
    env = Env({"DATABASE_URL": "mysql://root@db/x"})
    with pytest.raises(ConfigError) as error:
        env.url("DATABASE_URL", None, schemes=("sqlite", "postgres"))
    assert str(error.value) == (
        "configuration error: DATABASE_URL: unsupported scheme 'mysql'; "
        "expected one of sqlite, postgres"
    )


def test_choice_list_and_path(tmp_path: Path) -> None:
    env = Env({"MODE": "Production", "HOSTS": " a.example , ,b.example", "DIR": "data"})
    assert env.choice("MODE", "development", ("development", "production")) == "production"
    assert env.csv("HOSTS", []) == ["a.example", "b.example"]
    assert env.path("DIR", Path("var"), base=tmp_path) == tmp_path / "data"
    assert env.path("OTHER", Path("var"), base=tmp_path) == tmp_path / "var"
    with pytest.raises(ConfigError, match="expected one of development, production"):
        Env({"MODE": "staging"}).choice("MODE", "development", ("development", "production"))
