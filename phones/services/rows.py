"""Many rows of one model in one ``executemany``, for the recorder's flushes.

``bulk_create`` compiles every value of every row through the ORM's generic SQL compiler:
about 190 us of Python per update check flushed (bench/update_check_steps.py), all of it
holding the GIL that the same process's request threads need. A ``RowWriter`` builds its
statement once and prepares each value with a converter chosen once per field, so a row
costs a tuple; the database then does the same work. PostgreSQL and SQLite both take the
``ON CONFLICT`` forms used here.

On PostgreSQL a large batch goes through ``COPY`` (psycopg 3's ``cursor.copy``) into a
temporary staging table of the same columns, then one ``INSERT ... SELECT`` with the same
``ON CONFLICT``: the rows travel as one stream instead of one statement each.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from django.conf import settings
from django.db import connections, models, transaction

Converter = Callable[[Any], Any]
COPY_FROM = 20  # rows: from here on PostgreSQL takes them through COPY
# Field types whose Python value the drivers take as it is.
_AS_IS = (
    models.CharField,
    models.TextField,
    models.BooleanField,
    models.IntegerField,
)


class RowWriter:
    """INSERT rows of ``model`` given as mappings of field name to value.

    ``conflict``: the unique column that decides a conflict; with ``update`` the listed
    fields take the new row's values (an upsert), without it the row is skipped.
    ``newer``: a field the new row's value of must be at least the stored one for the
    upsert to apply (an older row read late never undoes a newer one).
    """

    def __init__(
        self,
        model: type[models.Model],
        fields: Sequence[str],
        *,
        conflict: str,
        update: Sequence[str] = (),
        newer: str | None = None,
        using: str = "default",
    ) -> None:
        self._fields: list[Any] = [model._meta.get_field(name) for name in fields]
        self._names = list(fields)
        self._using = using
        self._conflict = conflict
        self._update = list(update)
        self._newer = newer
        self._table = model._meta.db_table
        self._sql: str | None = None
        self._copy_sql: tuple[str, str, str, str] | None = None
        self._converters: list[Converter] | None = None

    def _prepare(self) -> tuple[str, list[Converter]]:
        if self._sql is None or self._converters is None:
            connection = connections[self._using]
            quote = connection.ops.quote_name
            columns = [quote(field.column) for field in self._fields]
            # Identifiers come from the model's metadata, quoted; values are parameters.
            table, names = quote(self._table), ", ".join(columns)
            conflict = f"ON CONFLICT ({quote(self._conflict)}) "
            if self._update:
                assignments = ", ".join(
                    f"{quote(column)} = EXCLUDED.{quote(column)}"
                    for column in (self._column(name) for name in self._update)
                )
                conflict += f"DO UPDATE SET {assignments}"
                if self._newer:
                    newer = quote(self._column(self._newer))
                    conflict += f" WHERE {table}.{newer} <= EXCLUDED.{newer}"
            else:
                conflict += "DO NOTHING"
            # Identifiers come from the model's metadata, quoted; values are parameters.
            sql = f"INSERT INTO {table} ({names}) VALUES ({', '.join(['%s'] * len(columns))}) "  # noqa: S608
            self._sql = sql + conflict
            stage = quote(f"stage_{self._table}")
            self._copy_sql = (
                f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS AS "  # noqa: S608
                f"SELECT {names} FROM {table} WITH NO DATA",
                f"COPY {stage} ({names}) FROM STDIN",
                # WHERE true: the upsert after a SELECT reads unambiguously.
                f"INSERT INTO {table} ({names}) SELECT {names} FROM {stage} WHERE true "  # noqa: S608
                + conflict,
                f"DELETE FROM {stage}",  # noqa: S608
            )
            self._converters = [self._converter(field) for field in self._fields]
        return self._sql, self._converters

    def _column(self, name: str) -> str:
        return str(self._fields[self._names.index(name)].column)

    def _converter(self, field: Any) -> Converter:
        """The backend's own adapter for the field's type, without the field's generic
        preparation path (which re-validates each value); anything else takes that path."""
        if isinstance(field, _AS_IS):
            return _same
        connection = connections[self._using]
        operations = connection.ops
        if isinstance(field, models.DateTimeField):
            if connection.vendor == "sqlite" and settings.USE_TZ:
                return _sqlite_datetime
            return operations.adapt_datetimefield_value
        if isinstance(field, models.JSONField):
            encoder = field.encoder
            if connection.vendor == "sqlite" and encoder is None:
                return _json_text  # what adapt_json_value writes, without a new encoder each
            return lambda value: operations.adapt_json_value(value, encoder)
        if isinstance(field, models.UUIDField):
            return _same if connection.features.has_native_uuid_field else _uuid_hex
        if isinstance(field, models.GenericIPAddressField):
            return operations.adapt_ipaddressfield_value
        using = self._using
        # The connection of the thread that writes (the adapters above read only settings).
        return lambda value: field.get_db_prep_save(value, connections[using])

    def write(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Insert (or upsert) ``rows``; returns how many were sent."""
        sql, converters = self._prepare()
        names = self._names
        params = [
            tuple(convert(row[name]) for convert, name in zip(converters, names, strict=True))
            for row in rows
        ]
        if params:
            connection = connections[self._using]
            # One transaction: in autocommit mode each row would commit (and sync) alone.
            with (
                transaction.atomic(using=self._using, savepoint=False),
                connection.cursor() as cursor,
            ):
                if connection.vendor == "postgresql" and len(params) >= COPY_FROM:
                    self._copy(connection, cursor, params)
                else:
                    cursor.executemany(sql, params)
        return len(params)

    def _copy(self, connection: Any, cursor: Any, params: list[tuple[Any, ...]]) -> None:
        """COPY the rows into the staging table, then one INSERT ... SELECT."""
        assert self._copy_sql is not None
        create, copy, insert, empty = self._copy_sql
        # Each time: a rolled-back savepoint takes the table's creation with it.
        cursor.execute(create)
        with cursor.cursor.copy(copy) as stream:
            for row in params:
                stream.write_row(row)
        cursor.execute(insert)
        cursor.execute(empty)


def _same(value: Any) -> Any:
    return value


_json_text = json.JSONEncoder().encode


def _sqlite_datetime(value: Any) -> Any:
    """Django's SQLite text of an aware datetime (UTC, naive), as
    ``adapt_datetimefield_value`` writes it with USE_TZ."""
    if value is None:
        return None
    return str(value.astimezone(dt.UTC).replace(tzinfo=None))


def _uuid_hex(value: Any) -> Any:
    return value.hex
