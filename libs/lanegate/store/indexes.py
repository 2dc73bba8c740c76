"""Every index the gateway needs, declared once and created idempotently at start."""

from collections.abc import Collection

from pymongo import ASCENDING, DESCENDING, IndexModel

INDEXES: dict[str, list[IndexModel]] = {
    "api_keys": [
        IndexModel([("keyHash", ASCENDING)], name="key_hash", unique=True),
        IndexModel([("tenantId", ASCENDING)], name="tenant"),
    ],
    "instances": [
        IndexModel([("tenantId", ASCENDING), ("clientId", ASCENDING)], name="tenant_client"),
        IndexModel([("state", ASCENDING)], name="state"),
    ],
    "messages": [
        IndexModel(
            [("tenantId", ASCENDING), ("createdAt", DESCENDING), ("_id", DESCENDING)],
            name="tenant_created_id",
        ),
        IndexModel(
            [("instanceName", ASCENDING), ("status", ASCENDING), ("lane", ASCENDING)],
            name="instance_status_lane",
        ),
        IndexModel([("status", ASCENDING), ("instanceName", ASCENDING)], name="status_instance"),
        # A scheduler's load pages through its instances' waiting messages in `_id` order.
        IndexModel(
            [("instanceName", ASCENDING), ("status", ASCENDING), ("_id", ASCENDING)],
            name="instance_status_id",
        ),
        IndexModel([("providerMessageId", ASCENDING)], name="provider_message", sparse=True),
        # The listing's indexes: one per leading filter, each ending in the sort key (the id
        # breaks ties, so a cursor is exact).
        *(
            IndexModel(
                [
                    ("tenantId", ASCENDING),
                    (field, ASCENDING),
                    ("createdAt", DESCENDING),
                    ("_id", DESCENDING),
                ],
                name=f"tenant_{field}_created_id",
            )
            for field in (
                "instanceName",
                "status",
                "lane",
                "messageType",
                "externalId",
                "reference",
                "to",
            )
        ),
    ],
    # externalId is an idempotency key per tenant: a second claim of one fails.
    "message_keys": [
        IndexModel(
            [("tenantId", ASCENDING), ("externalId", ASCENDING)],
            name="tenant_external_unique",
            unique=True,
        ),
    ],
    "contacts": [
        IndexModel(
            [("tenantId", ASCENDING), ("identifier", ASCENDING)],
            name="tenant_identifier",
            unique=True,
        ),
        IndexModel([("tenantId", ASCENDING), ("tags", ASCENDING)], name="tenant_tags"),
        # The listing's filters by group, source and status, each in number order.
        *(
            IndexModel(
                [("tenantId", ASCENDING), (field, ASCENDING), ("identifier", ASCENDING)],
                name=f"tenant_{field}_identifier",
            )
            for field in ("groupIds", "sourceId", "statusId")
        ),
    ],
    "instance_health": [
        IndexModel([("instanceName", ASCENDING), ("day", ASCENDING)], name="instance_day"),
        IndexModel([("expiresAt", ASCENDING)], name="expires", expireAfterSeconds=0),
    ],
    "rate_limits": [
        IndexModel([("expiresAt", ASCENDING)], name="expires", expireAfterSeconds=0),
    ],
    "users": [
        IndexModel([("email", ASCENDING)], name="email", unique=True),
        IndexModel([("tenantId", ASCENDING)], name="tenant"),
        IndexModel([("invitationHash", ASCENDING)], name="invitation"),
    ],
    "user_sessions": [
        IndexModel([("expiresAt", ASCENDING)], name="expires", expireAfterSeconds=0),
    ],
    "refresh_tokens": [
        IndexModel([("expiresAt", ASCENDING)], name="expires", expireAfterSeconds=0),
    ],
    "tenant_usage": [
        IndexModel([("expiresAt", ASCENDING)], name="expires", expireAfterSeconds=0),
    ],
    "usage_days": [
        IndexModel([("tenantId", ASCENDING), ("day", ASCENDING)], name="tenant_day"),
        IndexModel([("expiresAt", ASCENDING)], name="expires", expireAfterSeconds=0),
    ],
    "webhook_deliveries": [
        IndexModel(
            [("instanceName", ASCENDING), ("createdAt", DESCENDING)], name="instance_created"
        ),
        IndexModel([("status", ASCENDING), ("createdAt", DESCENDING)], name="status_created"),
        IndexModel([("status", ASCENDING), ("nextAttemptAt", ASCENDING)], name="status_due"),
        IndexModel([("messageId", ASCENDING)], name="message", sparse=True),
        IndexModel(
            [("tenantId", ASCENDING), ("createdAt", DESCENDING), ("_id", DESCENDING)],
            name="tenant_created",
        ),
    ],
    "conversation_windows": [
        IndexModel(
            [("instanceName", ASCENDING), ("contact", ASCENDING)],
            name="instance_contact",
            unique=True,
        ),
    ],
    "inbound_seen": [
        IndexModel(
            [("instanceName", ASCENDING), ("providerMessageId", ASCENDING)],
            name="instance_provider_message",
            unique=True,
        ),
        IndexModel([("expiresAt", ASCENDING)], name="expires", expireAfterSeconds=0),
    ],
    "early_receipts": [
        IndexModel(
            [("instanceName", ASCENDING), ("providerMessageId", ASCENDING), ("status", ASCENDING)],
            name="instance_provider_message_status",
            unique=True,
        ),
        IndexModel([("expiresAt", ASCENDING)], name="expires", expireAfterSeconds=0),
    ],
    "inbound_messages": [
        IndexModel(
            [("instanceName", ASCENDING), ("providerMessageId", ASCENDING)],
            name="instance_provider_message",
            unique=True,
        ),
        # A contact's conversation, newest first (the id breaks ties, so a cursor is exact).
        IndexModel(
            [
                ("tenantId", ASCENDING),
                ("from", ASCENDING),
                ("receivedAt", DESCENDING),
                ("_id", DESCENDING),
            ],
            name="tenant_from_received_id",
        ),
    ],
    # A chat's id comes from its tenant, instance and contact (`keys.chat_id`).
    "chats": [
        # The chat list, newest first, of a tenant or of one of its instances.
        IndexModel(
            [("tenantId", ASCENDING), ("lastMessageAt", DESCENDING), ("_id", DESCENDING)],
            name="tenant_last_message_id",
        ),
        IndexModel(
            [
                ("tenantId", ASCENDING),
                ("instanceName", ASCENDING),
                ("lastMessageAt", DESCENDING),
                ("_id", DESCENDING),
            ],
            name="tenant_instance_last_message_id",
        ),
    ],
    "sources": [IndexModel([("tenantId", ASCENDING), ("name", ASCENDING)], name="tenant_name")],
    "statuses": [
        IndexModel(
            [("tenantId", ASCENDING), ("order", ASCENDING), ("name", ASCENDING)],
            name="tenant_order_name",
        )
    ],
    "contact_comments": [
        IndexModel(
            [
                ("tenantId", ASCENDING),
                ("contactId", ASCENDING),
                ("createdAt", DESCENDING),
                ("_id", DESCENDING),
            ],
            name="tenant_contact_created_id",
        )
    ],
    "groups": [IndexModel([("tenantId", ASCENDING), ("name", ASCENDING)], name="tenant_name")],
    "lane_state": [IndexModel([("shard", ASCENDING)], name="shard")],
    "scheduler_replicas": [IndexModel([("seenAt", ASCENDING)], name="seen")],
    "templates": [
        # The listing's: by name, the id breaking ties so a cursor is exact.
        IndexModel(
            [
                ("tenantId", ASCENDING),
                ("instanceName", ASCENDING),
                ("name", ASCENDING),
                ("_id", ASCENDING),
            ],
            name="tenant_instance_name_id",
        ),
        IndexModel(
            [("tenantId", ASCENDING), ("name", ASCENDING), ("_id", ASCENDING)],
            name="tenant_name_id",
        ),
        IndexModel([("instanceName", ASCENDING), ("syncedAt", ASCENDING)], name="instance_synced"),
        IndexModel(
            [("tenantId", ASCENDING), ("wabaId", ASCENDING), ("metaId", ASCENDING)],
            name="tenant_waba_meta",
        ),
    ],
    "otp_codes": [
        # Verify by number reads its latest code; blocks are read by number.
        IndexModel(
            [("tenantId", ASCENDING), ("to", ASCENDING), ("createdAt", DESCENDING)],
            name="tenant_to_created",
        ),
        IndexModel(
            [("tenantId", ASCENDING), ("status", ASCENDING), ("expiresAt", ASCENDING)],
            name="tenant_status_expires",
        ),
        # ingress-api's expiry pass looks for pending codes past their expiry.
        IndexModel([("status", ASCENDING), ("expiresAt", ASCENDING)], name="status_expires"),
        # Expired, verified and blocked codes go once their status stopped being read.
        IndexModel([("purgeAt", ASCENDING)], name="purge", expireAfterSeconds=0),
    ],
    "otp_number_sends": [
        # A number's send times go an hour after its latest send, when none of them counts.
        IndexModel([("purgeAt", ASCENDING)], name="purge", expireAfterSeconds=0),
    ],
    "sandbox_outbox": [
        IndexModel([("instanceName", ASCENDING), ("sentAt", ASCENDING)], name="instance_sent"),
    ],
    "numbered_ids": [
        # A number names one thing of its kind per tenant (the `_id` holds the thing's ref).
        IndexModel(
            [("tenantId", ASCENDING), ("kind", ASCENDING), ("number", ASCENDING)],
            name="tenant_kind_number",
            unique=True,
        ),
    ],
}

# The unique index chats were upserted by before their ids came from tenant, instance and
# contact (`store.changes.key_chats` drops it first).
CHATS_BY_CONTACT = "tenant_instance_contact"

# Indexes an earlier release made and this one does not want, by collection: each start drops
# any it finds, after the one-time changes (`store.changes`) that needed them gone, so one a
# process of an earlier release made again goes too. (The messages' partial unique index on
# `externalId` is not here: only the change that gives those messages key records drops it.)
RETIRED: dict[str, frozenset[str]] = {
    "messages": frozenset(
        {
            "tenant_created",
            *(
                f"tenant_{field}_created"
                for field in ("instanceName", "status", "lane", "messageType", "externalId", "to")
            ),
        }
    ),
    "templates": frozenset({"tenant_instance_name", "tenant_name"}),
    "chats": frozenset({CHATS_BY_CONTACT}),
}


def gaps(collection: str, present: Collection[str]) -> tuple[list[IndexModel], list[str]]:
    """Of a declared collection whose indexes are named `present`: the declared indexes it
    lacks, and the retired ones it has."""
    missing = [model for model in INDEXES[collection] if model.document["name"] not in present]
    return missing, sorted(RETIRED.get(collection, frozenset()) & set(present))
