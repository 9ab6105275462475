"""Keep customer profiles in step with Salesforce, and start journeys there.

Data flow::

    engine transaction ──enqueue()──> salesforce_pending (one row per customer)
                                            │ run_sync(): sObject Collections upsert
                                            v
    Salesforce <── client (auth, limits, retries) ──> synced / dead letters / review
    Salesforce <── run_backfill(): Bulk API 2.0 ingest, resumable
    Salesforce <── publish_moments(): Platform Events from salesforce_moments

See ``docs/salesforce.md`` for the contract with Salesforce.
"""

from tillsight.connectors.salesforce import tables as tables
from tillsight.connectors.salesforce.auth import token_source
from tillsight.connectors.salesforce.bulk import BackfillReport, run_backfill
from tillsight.connectors.salesforce.client import SalesforceClient
from tillsight.connectors.salesforce.config import SalesforceSettings, load_settings
from tillsight.connectors.salesforce.events import (
    Moment,
    MomentKind,
    PublishReport,
    enqueue_moment,
    publish_moments,
)
from tillsight.connectors.salesforce.metadata import write_metadata
from tillsight.connectors.salesforce.profiles import Profile, read_profiles
from tillsight.connectors.salesforce.queue import (
    enqueue,
    queue_status,
    retry_dead_letters,
)
from tillsight.connectors.salesforce.sync import SyncReport, run_sync

__all__ = [
    "BackfillReport",
    "Moment",
    "MomentKind",
    "Profile",
    "PublishReport",
    "SalesforceClient",
    "SalesforceSettings",
    "SyncReport",
    "connect",
    "enqueue",
    "enqueue_moment",
    "load_settings",
    "publish_moments",
    "queue_status",
    "read_profiles",
    "retry_dead_letters",
    "run_backfill",
    "run_sync",
    "write_metadata",
]


def connect(settings: SalesforceSettings) -> SalesforceClient:
    """Build a client that logs in with the flow the settings name."""
    return SalesforceClient(settings, token_source(settings))
