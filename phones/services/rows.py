"""Many rows of one model in one ``executemany``, for the recorder's flushes.

``bulk_create`` compiles every value of every row through the ORM's generic SQL compiler:
about 190 us of Python per update check flushed (bench/update_check_steps.py), all of it
holding the GIL that the same process's request threads need. A ``RowWriter`` builds its
statement once and prepares each value with a converter chosen once per field, so a row
costs a tuple; the database then does the same work. PostgreSQL and SQLite both take the
``ON CONFLICT`` forms used here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from django.db import connections, models, transaction

Converter = Callable[[Any], Any]
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
    """

    def __init__(
        self,
        model: type[models.Model],
        fields: Sequence[str],
        *,
        conflict: str,
        update: Sequence[str] = (),
        using: str = "default",
    ) -> None:
        self._fields: list[Any] = [model._meta.get_field(name) for name in fields]
        self._names = list(fields)
        self._using = using
        self._conflict = conflict
        self._update = list(update)
        self._table = model._meta.db_table
        self._sql: str | None = None
        self._converters: list[Converter] | None = None

    def _prepare(self) -> tuple[str, list[Converter]]:
        if self._sql is None or self._converters is None:
            connection = connections[self._using]
            quote = connection.ops.quote_name
            columns = [quote(field.column) for field in self._fields]
            # Identifiers come from the model's metadata, quoted; values are parameters.
            sql = (
                f"INSERT INTO {quote(self._table)} ({', '.join(columns)}) "  # noqa: S608
                f"VALUES ({', '.join(['%s'] * len(columns))}) "
                f"ON CONFLICT ({quote(self._conflict)}) "
            )
            if self._update:
                assignments = ", ".join(
                    f"{quote(column)} = EXCLUDED.{quote(column)}"
                    for column in (self._column(name) for name in self._update)
                )
                sql += f"DO UPDATE SET {assignments}"
            else:
                sql += "DO NOTHING"
            self._sql = sql
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
            return operations.adapt_datetimefield_value
        if isinstance(field, models.JSONField):
            encoder = field.encoder
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
            # One transaction: in autocommit mode each row would commit (and sync) alone.
            with (
                transaction.atomic(using=self._using, savepoint=False),
                connections[self._using].cursor() as cursor,
            ):
                cursor.executemany(sql, params)
        return len(params)


def _same(value: Any) -> Any:
    return value


def _uuid_hex(value: Any) -> Any:
    return value.hex
