"""What a Salesforce admin deploys: tillsight's fields, its Platform Event, access.

``write_metadata`` writes a source-format folder (the layout of ``sf project``)::

    package.xml
    objects/Contact/fields/Tillsight_Key__c.field-meta.xml  (one per field)
    objects/Tillsight_Moment__e/Tillsight_Moment__e.object-meta.xml
    objects/Tillsight_Moment__e/fields/*.field-meta.xml
    permissionsets/Tillsight_Integration.permissionset-meta.xml

Deploy it with ``sf project deploy start --manifest package.xml`` from inside
a project whose package directory is that folder, then assign the permission
set to the integration user. Standard fields (Email, FirstName, ...) are left
alone.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from tillsight.connectors.salesforce.config import SalesforceSettings

NAMESPACE = "http://soap.sforce.com/2006/04/metadata"
PERMISSION_SET = "Tillsight_Integration"


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """The metadata of one custom field."""

    api_name: str
    kind: str
    length: int | None = None
    precision: tuple[int, int] | None = None
    picklist: tuple[str, ...] = ()
    is_external_id: bool = False


def _label(api_name: str) -> str:
    return api_name.removesuffix("__c").replace("_", " ")


def profile_fields(settings: SalesforceSettings) -> list[FieldSpec]:
    """Return the custom fields tillsight writes on the target object."""
    kinds = {
        "stage": FieldSpec("", "Text", length=64),
        "segments": FieldSpec(
            "", "MultiselectPicklist", picklist=settings.segment_values
        ),
        "tier": FieldSpec("", "Text", length=64),
        "points_balance": FieldSpec("", "Number", precision=(18, 0)),
        "lifetime_net_spend": FieldSpec("", "Number", precision=(18, 2)),
        "last_purchase_at": FieldSpec("", "DateTime"),
        "consent_email": FieldSpec("", "Checkbox"),
        "consent_sms": FieldSpec("", "Checkbox"),
        "merged_into": FieldSpec("", "Text", length=40),
    }
    specs = [FieldSpec(settings.external_id_field, "Text", 40, is_external_id=True)]
    for attr, api_name in settings.fields.owned().items():
        template = kinds.get(attr, FieldSpec("", "Text", length=255))
        specs.append(
            FieldSpec(
                api_name,
                template.kind,
                template.length,
                template.precision,
                template.picklist,
            )
        )
    return specs


def event_fields(settings: SalesforceSettings) -> list[FieldSpec]:
    """Return the fields of the moment Platform Event."""
    events = settings.events
    return [
        FieldSpec(events.customer_key, "Text", length=40),
        FieldSpec(events.kind, "Text", length=32),
        FieldSpec(events.name, "Text", length=120),
        FieldSpec(events.occurred_at, "DateTime"),
        FieldSpec(events.rule, "Text", length=64),
        FieldSpec(events.event_id, "Text", length=64),
    ]


def _element(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    child = ET.SubElement(parent, tag)
    if text is not None:
        child.text = text
    return child


def field_xml(spec: FieldSpec) -> ET.Element:
    """Build the CustomField element of one field."""
    root = ET.Element("CustomField", xmlns=NAMESPACE)
    _element(root, "fullName", spec.api_name)
    if spec.kind == "Checkbox":
        _element(root, "defaultValue", "false")
    if spec.is_external_id:
        _element(root, "caseSensitive", "true")
        _element(root, "externalId", "true")
    _element(root, "label", _label(spec.api_name))
    if spec.length is not None:
        _element(root, "length", str(spec.length))
    if spec.precision is not None:
        _element(root, "precision", str(spec.precision[0]))
    if spec.kind != "Checkbox":
        _element(root, "required", "false")
    if spec.precision is not None:
        _element(root, "scale", str(spec.precision[1]))
    _element(root, "type", spec.kind)
    if spec.is_external_id:
        _element(root, "unique", "true")
    if spec.kind == "MultiselectPicklist":
        _picklist(root, spec.picklist)
    return root


def _picklist(root: ET.Element, values: tuple[str, ...]) -> None:
    value_set = _element(root, "valueSet")
    _element(value_set, "restricted", "false")
    definition = _element(value_set, "valueSetDefinition")
    _element(definition, "sorted", "false")
    for value in values:
        entry = _element(definition, "value")
        _element(entry, "fullName", value)
        _element(entry, "default", "false")
        _element(entry, "label", value)
    _element(root, "visibleLines", "4")


def event_object_xml(settings: SalesforceSettings) -> ET.Element:
    """Build the CustomObject element of the moment Platform Event."""
    root = ET.Element("CustomObject", xmlns=NAMESPACE)
    _element(root, "deploymentStatus", "Deployed")
    _element(root, "eventType", "HighVolume")
    label = settings.events.object.removesuffix("__e").replace("_", " ")
    _element(root, "label", label)
    _element(root, "pluralLabel", label + "s")
    _element(root, "publishBehavior", "PublishAfterCommit")
    return root


def permission_set_xml(settings: SalesforceSettings) -> ET.Element:
    """Build a permission set giving the integration user every field it writes."""
    root = ET.Element("PermissionSet", xmlns=NAMESPACE)
    _element(root, "description", "Lets tillsight keep profiles in step.")
    for spec in profile_fields(settings):
        permission = _element(root, "fieldPermissions")
        _element(permission, "editable", "true")
        _element(permission, "field", f"{settings.object}.{spec.api_name}")
        _element(permission, "readable", "true")
    _element(root, "label", "Tillsight Integration")
    access = _element(root, "objectPermissions")
    _element(access, "allowCreate", "true")
    _element(access, "allowRead", "true")
    _element(access, "object", settings.events.object)
    return root


def package_xml(settings: SalesforceSettings) -> ET.Element:
    """Build the manifest listing every component written."""
    obj, event = settings.object, settings.events.object
    members = {
        "CustomField": sorted(
            [f"{obj}.{spec.api_name}" for spec in profile_fields(settings)]
            + [f"{event}.{spec.api_name}" for spec in event_fields(settings)]
        ),
        "CustomObject": [event],
        "PermissionSet": [PERMISSION_SET],
    }
    root = ET.Element("Package", xmlns=NAMESPACE)
    for type_name, names in members.items():
        types = _element(root, "types")
        for name in names:
            _element(types, "members", name)
        _element(types, "name", type_name)
    _element(root, "version", settings.api_version)
    return root


def _write(path: Path, root: ET.Element) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.indent(root, space="    ")
    text = ET.tostring(root, encoding="unicode", xml_declaration=False)
    path.write_text('<?xml version="1.0" encoding="UTF-8"?>\n' + text + "\n")
    return path


def write_metadata(settings: SalesforceSettings, folder: Path) -> list[Path]:
    """Write the deployable metadata into ``folder``; return the files written."""
    objects = folder / "objects"
    event = settings.events.object
    written = [
        _write(
            objects / settings.object / "fields" / f"{spec.api_name}.field-meta.xml",
            field_xml(spec),
        )
        for spec in profile_fields(settings)
    ]
    written.append(
        _write(objects / event / f"{event}.object-meta.xml", event_object_xml(settings))
    )
    written += [
        _write(
            objects / event / "fields" / f"{spec.api_name}.field-meta.xml",
            field_xml(spec),
        )
        for spec in event_fields(settings)
    ]
    permission_file = f"{PERMISSION_SET}.permissionset-meta.xml"
    written.append(
        _write(
            folder / "permissionsets" / permission_file, permission_set_xml(settings)
        )
    )
    written.append(_write(folder / "package.xml", package_xml(settings)))
    return written
