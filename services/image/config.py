"""Settings of the image service (``IMAGE_*``); the storage half is the kernel's ``BlobSettings``."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from services.common.blobs import BlobSettings

MAX_IMAGE_BYTES = 10 * 1024 * 1024  # docs/api.md, images: 10 485 760 bytes


class ImageSettings(BlobSettings):
    model_config = SettingsConfigDict(env_prefix="IMAGE_", extra="ignore", populate_by_name=True)

    max_bytes: int = MAX_IMAGE_BYTES
    # The embedded store refuses bodies past this on the PUT itself (storage protection); between
    # ``max_bytes`` and this cap the object is stored and the verification answers FILE_TOO_LARGE.
    local_put_cap_bytes: int = 2 * MAX_IMAGE_BYTES
    pending_ttl_seconds: int = 24 * 3600
    sweep_interval_seconds: float = 600.0
    # Hosts whose URLs scan/chat accept as ``image_url``; default: the host of the public base.
    allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip().lower() for item in value.split(",") if item.strip()]
        return value

    def hosts(self, image_api: str) -> frozenset[str]:
        if self.allowed_hosts:
            return frozenset(self.allowed_hosts)
        return frozenset({(urlsplit(self.public_base(image_api)).hostname or "").lower()})
