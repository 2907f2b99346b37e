"""Every domain service this distribution can run: adding a service is one entry here.

An entry (``services.common.identity.ServiceEntry``) is the only place that names a service's
public prefix, and through it its internal prefix, outbox, consumers, workers and commands; the
service's own code, the CLI, the dev gateway, the workers and the tests read them from here.
"""

from __future__ import annotations

from services.common.identity import ServiceEntry

SERVICES: dict[str, ServiceEntry] = {
    entry.name: entry
    for entry in (
        ServiceEntry(
            "auth",
            "/api/v1/auth",
            "services.auth.app:create_app",
            outbox="services.auth.models:Outbox",
            consumers="services.auth.consumers",
        ),
        # Named ``my`` (package, schema, queue, deploy folder); served at the client's ``/users`` path.
        ServiceEntry(
            "my",
            "/api/v1/users",
            "services.my.app:create_app",
            outbox="services.my.models:Outbox",
            consumers="services.my.consumers",
        ),
        ServiceEntry(
            "character",
            "/api/v1/character",
            "services.character.app:create_app",
            outbox="services.character.models:Outbox",
            consumers="services.character.consumers",
        ),
        ServiceEntry(
            "location",
            "/api/v1/locations",
            "services.location.app:create_app",
            commands="services.location.cli:app",
        ),
        ServiceEntry("image", "/api/v1/images", "services.image.app:create_app", consumers="services.image.consumers"),
        ServiceEntry(
            "scan",
            "/api/v1/scan",
            "services.scan.app:create_app",
            outbox="services.scan.models:Outbox",
            consumers="services.scan.consumers",
            workers={"scan": "services.scan.worker:run_scan_worker"},
        ),
        ServiceEntry(
            "info",
            "/api/v1/info",
            "services.info.app:create_app",
            commands="services.info.cli:app",
            workers={"info-refresh": "services.info.worker:run_news_refresher"},
        ),
        ServiceEntry(
            "chat",
            "/api/v1/chat",
            "services.chat.app:create_app",
            consumers="services.chat.consumers",
            workers={"chat": "services.chat.worker:run_chat_worker"},
        ),
    )
}
