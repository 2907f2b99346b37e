"""Bodies of the character endpoints: the public catalog."""

from __future__ import annotations

import uuid

from pydantic import BaseModel


class CatalogCharacter(BaseModel):
    id: uuid.UUID
    code: str
    name: str
    type: str
    dialog: str
    match: str | None
    image_url: str | None
