"""The scopes an API key can carry (no imports: the CLI's help reads them)."""

from __future__ import annotations

__all__ = ["ADMIN", "SCOPES"]

ADMIN = "admin"
SCOPES: dict[str, str] = {
    "tasks:read": "read tasks, their input requests, crews and agents",
    "tasks:write": "submit, cancel and retry tasks",
    "events:read": "read event pages and streams (SSE, WebSockets)",
    "input:write": "answer a waiting task's input request",
    "configs:read": "config status and validation",
    ADMIN: "everything",
}
