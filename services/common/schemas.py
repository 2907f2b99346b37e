"""Pydantic building blocks shared by the services' I/O schemas."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, GetJsonSchemaHandler, PlainSerializer, StringConstraints
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from services.common.clock import iso_ms

# Every datetime leaves the API as ``2026-01-20T03:15:42.120Z``.
UtcDateTime = Annotated[datetime, PlainSerializer(iso_ms, return_type=str, when_used="json")]

# Unicode category Cc (C0, DEL, C1) and Cs (surrogates), with and without tab/CR/LF.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_CONTROL_BUT_LINE_BREAKS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def refuse_control_characters(value: str, *, multiline: bool = False) -> str:
    """Refuse control characters (C0, DEL, C1) and lone surrogates in text from outside.

    One rule for every text input, in both storage modes: a NUL matched everything in SQLite's
    ``instr`` and is an error in PostgreSQL text, and none of them is text a person typed. Refused,
    not stripped, so what is stored is exactly what was sent. ``multiline`` text keeps tab and line
    breaks."""
    found = (_CONTROL_BUT_LINE_BREAKS if multiline else _CONTROL).search(value)
    if found is not None:
        raise ValueError(f"control character U+{ord(found.group()):04X} is not allowed")
    return value


def _multiline(value: str) -> str:
    return refuse_control_characters(value, multiline=True)


class _Documented:
    """Puts the rule into the OpenAPI document as a ``pattern`` (validation stays the validator's,
    with its clearer message): generated clients and fuzzers know what is refused."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["pattern"] = self.pattern
        return json_schema


_SINGLE_LINE = _Documented("^[^\\u0000-\\u001f\\u007f-\\u009f]*$")
_MULTILINE = _Documented("^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f]*$")

# Single-line text from a request (names, queries, URLs, keys): no control character at all.
# Length limits go on top (``Annotated[Text, Field(max_length=…)]``), never inside: pydantic drops
# string constraints placed after a validator.
Text = Annotated[str, AfterValidator(refuse_control_characters), _SINGLE_LINE]
# The same, trimmed first (docs/api.md, conventions: data — lengths count after trimming).
TrimmedText = Annotated[
    str, StringConstraints(strip_whitespace=True), AfterValidator(refuse_control_characters), _SINGLE_LINE
]
# Free text a person writes (notes, messages): tab, CR and LF allowed, other control characters not.
MultilineText = Annotated[str, AfterValidator(_multiline), _MULTILINE]


class ErrorBody(BaseModel):
    """The body of every error this backend produces (documented on routes)."""

    detail: str
    code: str


class Schema(BaseModel):
    model_config = ConfigDict(from_attributes=True)
