"""The import-linter contract type of ``make lint``: layers whose domain layer comes from the registry.

A plain ``layers`` contract would list the domain services by hand, a second list to keep in step
with ``services/registry.py``. Here the layer written ``{domains}`` expands to every registered
service as independent siblings (``services.auth | services.my | …``), so adding a service stays one
registry entry and the rules cover it at once.
"""

from __future__ import annotations

from typing import Any

from importlinter.contracts.layers import LayersContract

DOMAINS = "{domains}"


class RegistryLayersContract(LayersContract):
    type_name = "registry_layers"

    def __init__(self, name: str, session_options: dict[str, Any], contract_options: dict[str, Any]) -> None:
        from services.registry import SERVICES

        domains = " | ".join(f"services.{service}" for service in SERVICES)
        layers = [domains if layer.strip() == DOMAINS else layer for layer in contract_options["layers"]]
        super().__init__(name, session_options, {**contract_options, "layers": layers})
