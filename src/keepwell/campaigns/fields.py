"""The merge-field catalogue: what an e-mail template may use, and what each field means.

A value that a customer does not have (no primary contact, no owner, no risk score yet) is
*undefined*: ``{{ customer.first_name }}`` then fails for that customer, so give a fallback,
``{{ customer.first_name | default("there") }}``, or test it, ``{% if owner %}``.
"""

from __future__ import annotations

__all__ = ["CUSTOMER_FIELDS", "OWNER_FIELDS", "TOP_LEVEL", "catalogue", "check_path"]

CUSTOMER_FIELDS: dict[str, str] = {
    "name": "account name",
    "company": "company name",
    "first_name": "first name of the primary contact (first word of their name)",
    "contact_name": "full name of the primary contact",
    "email": "the address the message goes to (account e-mail, else the primary contact's)",
    "industry": "industry",
    "country": "ISO country code (e.g. DE)",
    "external_id": "the id in your billing system or shop",
    "time_zone": "IANA time zone (e.g. Europe/Berlin)",
    "status": "lead, trial, active or churned",
    "attributes": "custom fields: customer.attributes.<key>",
}
OWNER_FIELDS: dict[str, str] = {
    "name": "the responsible manager's name",
    "email": "the responsible manager's e-mail",
}
TOP_LEVEL: dict[str, str] = {
    "customer": "the customer (see customer.* fields)",
    "owner": "the customer's owner (see owner.* fields); undefined when nobody owns it",
    "plan": "name of the current plan (largest subscription in force)",
    "mrr": "current MRR as money text, e.g. $1,234.56",
    "risk_band": "latest churn-risk band (low, medium, high)",
    "health_band": "latest health band (red, yellow, green)",
    "health_score": "latest health score, 0-100",
    "unsubscribe_url": "the recipient's one-click unsubscribe link",
    "data": "values passed by the caller (automation, journeys): data.<key>",
}
FREE_KEYS = frozenset({"data"})
"""Top-level names whose keys are not checked (any ``data.<key>``)."""
NULLABLE_OBJECTS = frozenset({"owner", "data"})
"""Objects that may be used bare, e.g. ``{% if owner %}``."""


def catalogue() -> dict[str, str]:
    """Every merge field with its meaning, in display order (``customer.name``, ...)."""
    out: dict[str, str] = {}
    for name, meaning in TOP_LEVEL.items():
        if name == "customer":
            fields = {k: v for k, v in CUSTOMER_FIELDS.items() if k != "attributes"}
            out.update({f"customer.{k}": v for k, v in fields.items()})
            out["customer.attributes.<key>"] = CUSTOMER_FIELDS["attributes"]
        elif name == "owner":
            out.update({f"owner.{k}": v for k, v in OWNER_FIELDS.items()})
        elif name == "data":
            out["data.<key>"] = meaning
        else:
            out[name] = meaning
    return out


def check_path(root: str, path: list[str]) -> str | None:
    """Why ``root.path...`` is not a merge field, or None when it is one."""
    shown = ".".join([root, *path])
    for key in path:
        if key.startswith("_"):
            return f"{shown!r}: names starting with '_' are not allowed"
    if root in FREE_KEYS:
        return None
    if root == "customer":
        if not path:
            return "'customer' alone is not a field; use e.g. customer.name"
        if path[0] == "attributes":
            return (
                None
                if len(path) >= 2
                else f"{shown!r} is not a field; use customer.attributes.<key>"
            )
        if path[0] not in CUSTOMER_FIELDS or len(path) > 1:
            return f"unknown merge field {shown!r}"
        return None
    if root == "owner":
        if path and (path[0] not in OWNER_FIELDS or len(path) > 1):
            return f"unknown merge field {shown!r}"
        return None
    if path:
        return f"unknown merge field {shown!r} ({root!r} has no fields)"
    return None
