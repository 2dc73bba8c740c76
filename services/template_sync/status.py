"""Meta's template status callbacks applied to the store, and told to the tenant."""

import uuid
from datetime import datetime

import structlog

from lanegate.broker import Broker
from lanegate.events import (
    TemplateStatusChanged,
    TemplateStatusReported,
    TemplateSyncRequested,
    utcnow,
)
from lanegate.store import Store
from lanegate.templates import template_id
from template_sync.metrics import TEMPLATE_STATUS_CHANGES

log = structlog.get_logger(__name__)

_EVENT_IDS = uuid.UUID("3f9a6c1e-2b7d-4e8f-a0c5-9d1e2f3a4b5c")


async def apply_status(store: Store, broker: Broker, report: TemplateStatusReported) -> None:
    """Record a reported status on every copy of the template and emit `template.status`.

    The tenant's `template.status` event is published before the stored status
    changes, with an id derived from the callback and the template: a callback
    handled twice after a crash publishes the same id again, which the webhook
    dispatcher delivers once.
    """
    copies = await store.templates.find(
        {"tenantId": report.tenantId, "wabaId": report.wabaId, "metaId": report.metaTemplateId}
    ).to_list(None)
    if not copies:
        # A template created at Meta since the last sync: pull it now, with its components.
        await broker.publish(
            TemplateSyncRequested(tenantId=report.tenantId, instanceName=report.instanceName)
        )
        copies = [
            {
                "_id": template_id(report.instanceName, report.metaTemplateId),
                "tenantId": report.tenantId,
                "instanceName": report.instanceName,
                "status": None,
            }
        ]
    for copy in copies:
        if copy["status"] == report.status:
            continue  # told already
        if _older(report, copy.get("statusReportedAt")):
            # A late or replayed callback: the status it reports was replaced since.
            log.info("stale template status ignored", template=copy["_id"], status=report.status)
            continue
        await broker.publish(
            TemplateStatusChanged(
                id=str(uuid.uuid5(_EVENT_IDS, f"{copy['_id']}:{report.id}")),
                tenantId=copy["tenantId"],
                instanceName=copy["instanceName"],
                templateId=copy["_id"],
                metaTemplateId=report.metaTemplateId,
                name=report.name,
                language=report.language,
                status=report.status,
                previousStatus=copy["status"],
                reason=report.reason,
            )
        )
        await store.templates.update_one(
            {"_id": copy["_id"]},
            {
                "$set": {
                    "status": report.status,
                    "statusReason": report.reason,
                    "statusChangedAt": utcnow(),
                    "statusReportedAt": report.reportedAt or copy.get("statusReportedAt"),
                }
            },
        )
        TEMPLATE_STATUS_CHANGES.labels(report.status).inc()
        log.info(
            "template status",
            instance=copy["instanceName"],
            template=report.name,
            status=report.status,
            previous=copy["status"],
        )


def _older(report: TemplateStatusReported, recorded: datetime | None) -> bool:
    """Whether Meta reported this status before the one already recorded."""
    return report.reportedAt is not None and recorded is not None and report.reportedAt < recorded
