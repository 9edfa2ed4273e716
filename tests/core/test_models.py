"""The models of ``core.models`` agree with the schema the migrations build.

The migrations are the source of truth for the DDL; the models only describe
it to peewee's query builder. Both are read here: the test database after the
migrations (``information_schema``) and each model's fields, compared column
by column (name, type, nullability), then keys and foreign keys.
"""

from __future__ import annotations

import pytest

from core.db import database
from core.models import MODELS

pytestmark = pytest.mark.usefixtures("services")

# information_schema's data_type -> the type peewee writes in DDL
PG_TYPES = {
    "bigint": "BIGINT",
    "integer": "INTEGER",
    "text": "TEXT",
    "character varying": "VARCHAR",
    "timestamp with time zone": "TIMESTAMPTZ",
    "bytea": "BYTEA",
    "uuid": "UUID",
    "jsonb": "JSONB",
    "boolean": "BOOLEAN",
}
# tables that no query of the application reads or writes
NOT_MODELLED = {"schema_migrations"}


def migrated_columns(table: str) -> dict[str, tuple[str, bool]]:
    """column -> (peewee DDL type, nullable) as the migrations left it."""
    rows = database.execute_sql(
        "SELECT column_name, data_type, character_maximum_length,"
        " is_nullable = 'YES', column_default"
        " FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = %s",
        (table,),
    ).fetchall()
    out = {}
    for name, data_type, length, nullable, default in rows:
        kind = PG_TYPES[data_type]
        if length is not None:
            kind = f"{kind}({length})"
        if kind == "BIGINT" and (default or "").startswith("nextval("):
            kind = "BIGSERIAL"
        out[name] = (kind, nullable)
    return out


def model_columns(model) -> dict[str, tuple[str, bool]]:
    """column -> (DDL type, nullable) as the model describes it."""
    out = {}
    for field in model._meta.sorted_fields:
        ctx = database.get_sql_context()
        kind = ctx.sql(field.ddl_datatype(ctx)).query()[0]
        out[field.column_name] = (kind.upper().replace(" ", ""), field.null)
    return out


def test_every_table_has_a_model_and_every_model_a_table():
    tables = set(database.get_tables()) - NOT_MODELLED
    assert {m._meta.table_name for m in MODELS} == tables


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_model_columns_match_the_migrated_table(model):
    assert model_columns(model) == migrated_columns(model._meta.table_name)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_model_primary_key_matches_the_migrated_table(model):
    meta = model._meta
    expected = [f.column_name for f in meta.get_primary_keys()]
    assert database.get_primary_keys(meta.table_name) == expected


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_model_foreign_keys_match_the_migrated_table(model):
    meta = model._meta
    declared = {
        (fk.column_name, fk.rel_model._meta.table_name, fk.rel_field.column_name)
        for fk in meta.refs
    }
    migrated = {
        (fk.column, fk.dest_table, fk.dest_column)
        for fk in database.get_foreign_keys(meta.table_name)
    }
    assert declared == migrated


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_model_on_delete_matches_the_migrated_table(model):
    meta = model._meta
    rows = database.execute_sql(
        "SELECT kcu.column_name, rc.delete_rule"
        " FROM information_schema.referential_constraints rc"
        " JOIN information_schema.key_column_usage kcu"
        "  ON kcu.constraint_name = rc.constraint_name"
        "  AND kcu.constraint_schema = rc.constraint_schema"
        " WHERE kcu.table_schema = current_schema() AND kcu.table_name = %s",
        (meta.table_name,),
    ).fetchall()
    declared = {fk.column_name: (fk.on_delete or "NO ACTION") for fk in meta.refs}
    assert declared == dict(rows)
