"""Settings of the Salesforce connector: where to log in and which field is which.

A mapping file is YAML; everything has a default except the ``auth`` block::

    object: Contact
    external_id_field: Tillsight_Key__c
    auth:
      flow: jwt_bearer
      client_id: 3MVG9...
      username: integration@example.com
      private_key_path: /etc/tillsight/salesforce.key
    fields:
      stage: Tillsight_Stage__c
      segments: Tillsight_Segments__c
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tillsight.errors import ConfigError
from tillsight.yamlfile import line_of, read_yaml

API_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
MAX_COLLECTION_RECORDS = 200
SETTING_PATH = re.compile(r"^([a-z_]+(?:\.[a-z_]+)*) '")


def _check_api_name(value: str | None, where: str) -> None:
    if value is not None and not API_NAME.match(value):
        raise ValueError(
            f"{where} '{value}' is not a Salesforce API name "
            "(letters, digits and underscores, starting with a letter)"
        )


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldMap(_Strict):
    """Which Salesforce field receives each profile value; ``None`` skips it.

    The custom fields are owned by tillsight and always written, so a value that
    becomes empty clears the field. The standard person fields (email, names) are
    written only when tillsight knows a value, never cleared.
    """

    stage: str | None = "Tillsight_Stage__c"
    segments: str | None = "Tillsight_Segments__c"
    tier: str | None = "Tillsight_Tier__c"
    points_balance: str | None = "Tillsight_Points_Balance__c"
    lifetime_net_spend: str | None = "Tillsight_Lifetime_Spend__c"
    last_purchase_at: str | None = "Tillsight_Last_Purchase_At__c"
    consent_email: str | None = "Tillsight_Consent_Email__c"
    consent_sms: str | None = "Tillsight_Consent_SMS__c"
    merged_into: str | None = "Tillsight_Merged_Into__c"
    email: str | None = "Email"
    first_name: str | None = "FirstName"
    last_name: str | None = "LastName"

    @model_validator(mode="after")
    def _names_are_api_names(self) -> FieldMap:
        for name, value in self.model_dump().items():
            _check_api_name(value, f"fields.{name}")
        return self

    def owned(self) -> dict[str, str]:
        """Return the profile attributes mapped to tillsight's custom fields."""
        return {
            attr: field
            for attr, field in self.model_dump().items()
            if field is not None and field.endswith("__c")
        }


class EventMap(_Strict):
    """The Platform Event that carries lifecycle moments, and its fields."""

    object: str = "Tillsight_Moment__e"
    customer_key: str = "Customer_Key__c"
    kind: str = "Kind__c"
    name: str = "Name__c"
    occurred_at: str = "Occurred_At__c"
    rule: str = "Rule__c"
    event_id: str = "Event_Id__c"

    @model_validator(mode="after")
    def _names_are_api_names(self) -> EventMap:
        for name, value in self.model_dump().items():
            _check_api_name(value, f"events.{name}")
        if not self.object.endswith("__e"):
            raise ValueError(f"events.object '{self.object}' must end in __e")
        return self


class JwtBearerAuth(_Strict):
    """OAuth 2.0 JWT bearer flow: a connected app with an uploaded certificate."""

    flow: Literal["jwt_bearer"]
    client_id: str
    username: str
    private_key_path: Path
    audience: str = "https://login.salesforce.com"


class ClientCredentialsAuth(_Strict):
    """OAuth 2.0 client credentials flow; the secret is read from the environment."""

    flow: Literal["client_credentials"]
    client_id: str
    client_secret_env: str = "TILLSIGHT_SALESFORCE_CLIENT_SECRET"


Auth = Annotated[JwtBearerAuth | ClientCredentialsAuth, Field(discriminator="flow")]


class SalesforceSettings(_Strict):
    """Everything the connector needs to know about one Salesforce org."""

    login_url: str = "https://login.salesforce.com"
    api_version: str = Field("62.0", pattern=r"^\d{2,3}\.0$")
    object: Literal["Contact", "Account"] = "Contact"
    external_id_field: str = "Tillsight_Key__c"
    record_type_id: str | None = None
    auth: Auth
    fields: FieldMap = FieldMap()
    events: EventMap = EventMap()
    segment_values: tuple[str, ...] = ("high_value",)
    last_name_fallback: str | None = None
    batch_size: int = Field(MAX_COLLECTION_RECORDS, ge=1, le=MAX_COLLECTION_RECORDS)
    all_or_none: bool = False
    bulk_chunk_records: int = Field(10_000, ge=1, le=150_000)
    http_retries: int = Field(3, ge=0, le=10)
    backoff_s: float = Field(1.0, ge=0)
    record_retry_rounds: int = Field(2, ge=0, le=10)
    limit_pause_hours: float = Field(1.0, ge=0)
    limit_warn_ratios: tuple[float, ...] = (0.5, 0.8)
    timeout_s: float = Field(30.0, gt=0)

    @model_validator(mode="after")
    def _fits_the_object(self) -> SalesforceSettings:
        _check_api_name(self.external_id_field, "external_id_field")
        if not self.external_id_field.endswith("__c"):
            raise ValueError(
                f"external_id_field '{self.external_id_field}' must be a custom "
                "field (ending in __c) that tillsight owns"
            )
        if self.object == "Account" and self.fields.email == "Email":
            raise ValueError(
                "fields.email 'Email' does not exist on a Person Account; "
                "use PersonEmail"
            )
        return self

    @property
    def token_url(self) -> str:
        """Return the OAuth 2.0 token endpoint of the login host."""
        return self.login_url.rstrip("/") + "/services/oauth2/token"


def settings_from_mapping(
    data: Any, *, source: str = "settings", root: yaml.Node | None = None
) -> SalesforceSettings:
    """Validate already-parsed settings, naming every wrong field in one error.

    With the YAML node tree (``root``), each problem also names its line.
    """
    try:
        return SalesforceSettings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            _problem(tuple(error["loc"]), error["msg"], source, root)
            for error in exc.errors(include_url=False)
        )
        raise ConfigError(problems) from exc


def _problem(
    loc: tuple[Any, ...], message: str, source: str, root: yaml.Node | None
) -> str:
    message = message.removeprefix("Value error, ")
    named = SETTING_PATH.match(message)
    if named is not None:
        # A whole-model check names its field first: point at that field's line.
        loc, text = tuple(named[1].split(".")), message
    else:
        text = f"{'.'.join(str(part) for part in loc) or '(top)'}: {message}"
    if root is None:
        return f"{source}: {text}"
    return f"line {line_of(root, loc)}: {source}: {text}"


def load_settings(path: Path) -> SalesforceSettings:
    """Read and validate a Salesforce mapping file (YAML); errors name the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from exc

    data, root = read_yaml(text, str(path))
    return settings_from_mapping(data, source=str(path), root=root)
