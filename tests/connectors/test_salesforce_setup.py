"""Mapping file, admin metadata, the migration, and the stand-in's documented bodies."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic.migration import MigrationContext
from alembic.operations import Operations
from salesforce_helpers import fixture_json
from sqlalchemy import create_engine, inspect

from tillsight.connectors.salesforce import load_settings, write_metadata
from tillsight.connectors.salesforce.config import SalesforceSettings
from tillsight.connectors.salesforce.standin_state import EXPIRED_SESSION, StandInState
from tillsight.connectors.salesforce.tables import metadata as shared_metadata
from tillsight.errors import ConfigError
from tillsight.store.migrations.versions import salesforce_0001

NS = {"md": "http://soap.sforce.com/2006/04/metadata"}
MAPPING = """\
object: Account
external_id_field: Loyalty_Id__c
record_type_id: 012000000000001AAA
auth:
  flow: client_credentials
  client_id: 3MVG9-app
fields:
  email: PersonEmail
  tier: null
"""


def test_a_mapping_file_loads_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "salesforce.yaml"
    path.write_text(MAPPING)

    settings = load_settings(path)

    assert (settings.object, settings.external_id_field) == ("Account", "Loyalty_Id__c")
    assert settings.fields.email == "PersonEmail"
    assert "tier" not in settings.fields.owned()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("fields:\n  email: Email\n", "PersonEmail"),
        ("batch_size: 500\n", "batch_size"),
        ("external_id_field: Email\n", "must be a custom field"),
        ("fields:\n  stage: Bad Name\n", "fields.stage 'Bad Name'"),
    ],
)
def test_a_wrong_mapping_names_the_field(
    tmp_path: Path, change: str, message: str
) -> None:
    base = MAPPING.replace("fields:\n  email: PersonEmail\n  tier: null\n", "")
    path = tmp_path / "salesforce.yaml"
    path.write_text(base + change)

    with pytest.raises(ConfigError, match=message):
        load_settings(path)


def test_metadata_lists_every_field_the_admin_deploys(
    settings: SalesforceSettings, tmp_path: Path
) -> None:
    written = write_metadata(settings, tmp_path)

    package = ET.parse(tmp_path / "package.xml").getroot()
    members = {m.text for m in package.iterfind(".//md:members", NS)}
    key = ET.parse(
        tmp_path / "objects/Contact/fields/Tillsight_Key__c.field-meta.xml"
    ).getroot()
    segments = ET.parse(
        tmp_path / "objects/Contact/fields/Tillsight_Segments__c.field-meta.xml"
    ).getroot()
    assert len(written) == 19
    assert {"Contact.Tillsight_Stage__c", "Tillsight_Moment__e"} <= members
    assert "Contact.Email" not in members
    assert key.findtext("md:externalId", namespaces=NS) == "true"
    assert key.findtext("md:unique", namespaces=NS) == "true"
    assert segments.findtext("md:type", namespaces=NS) == "MultiselectPicklist"
    assert tmp_path / "objects/Tillsight_Moment__e/fields/Event_Id__c.field-meta.xml"


def test_the_migration_creates_the_tables_of_tables_py(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'migrated.db'}")

    with engine.begin() as conn, Operations.context(MigrationContext.configure(conn)):
        salesforce_0001.upgrade()

    inspector = inspect(engine)
    for name, table in shared_metadata.tables.items():
        if not name.startswith("salesforce_"):
            continue
        migrated = {c["name"]: c["nullable"] for c in inspector.get_columns(name)}
        declared = {c.name: c.nullable for c in table.columns}
        assert migrated == declared, name
        assert {i["name"] for i in inspector.get_indexes(name)} == {
            i.name for i in table.indexes
        }


def test_stand_in_bodies_have_the_documented_shapes(
    standin: StandInState, settings: SalesforceSettings, client: Any
) -> None:
    token = client.login()

    created = _patch(token, "/sobjects/Contact/Tillsight_Key__c/C9", {"LastName": "A"})
    updated = _patch(token, "/sobjects/Contact/Tillsight_Key__c/C9", {"LastName": "B"})
    standin.tokens.clear()
    expired = _patch(token, "/sobjects/Contact/Tillsight_Key__c/C9", {})

    assert (
        fixture_json("restforce_spec_fixtures/expired_session_response.json")
        == EXPIRED_SESSION
    )
    assert (expired.status_code, expired.json()) == (401, EXPIRED_SESSION)
    created_fixture = fixture_json(
        "restforce_spec_fixtures/sobject/upsert_created_success_response.json"
    )
    assert created.status_code == 201
    assert created.json().keys() == created_fixture.keys()
    assert (updated.status_code, updated.content) == (204, b"")
    token_fixture = fixture_json("restforce_spec_fixtures/auth_success_response.json")
    assert set(token_fixture) <= set(_token_body(settings))


def _patch(token: Any, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.patch(
        f"{token.instance_url}/services/data/v62.0{path}",
        json=body,
        headers={"Authorization": f"Bearer {token.access_token}"},
    )


def _token_body(settings: SalesforceSettings) -> dict[str, Any]:
    form = {
        "grant_type": "client_credentials",
        "client_id": "3MVG9-tillsight-test",
        "client_secret": "s3cret",
    }
    return dict(httpx.post(settings.token_url, data=form).json())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (MAPPING + "batch_size: 500\n", "line 10: .*batch_size"),
        (MAPPING.replace("tier: null", "tier: Bad Name"), "line 9: .*fields.tier"),
        (MAPPING + "auth: [\n", "line 11: .*not valid YAML"),
    ],
)
def test_a_wrong_mapping_names_its_line(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "salesforce.yaml"
    path.write_text(text)

    with pytest.raises(ConfigError, match=message):
        load_settings(path)
