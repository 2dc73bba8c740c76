"""Request bodies and answers of the tenant and operator API, one module per area (answers are
documented in the OpenAPI document; the handlers build them as plain dicts)."""
