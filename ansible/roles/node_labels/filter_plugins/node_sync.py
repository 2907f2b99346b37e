"""Compute the kubectl arguments that bring a node's labels/taints in line
with the inventory.

Doing the diff in Python keeps the tasks idempotent (kubectl runs only when
something differs) without a wall of Jinja.
"""

from __future__ import annotations

from typing import Any


def _managed(key: str, prefix: str) -> bool:
    return key.startswith(prefix)


def node_label_args(node: dict[str, Any], desired: dict[str, Any] | None, prefix: str) -> list[str]:
    """`kubectl label` arguments: ``k=v`` for missing/different, ``k-`` for stale managed keys."""
    current = (node.get("metadata") or {}).get("labels") or {}
    desired = {str(k): str(v) for k, v in (desired or {}).items()}
    args = [f"{k}={v}" for k, v in sorted(desired.items()) if current.get(k) != v]
    args += [f"{k}-" for k in sorted(current) if _managed(k, prefix) and k not in desired]
    return args


def _taint(t: dict[str, Any]) -> tuple[str, str, str]:
    return (str(t["key"]), str(t.get("value") or ""), str(t["effect"]))


def node_taint_args(node: dict[str, Any], desired: list[dict[str, Any]] | None, prefix: str) -> list[str]:
    """`kubectl taint` arguments: ``k=v:Effect`` to add, ``k:Effect-`` to remove stale managed taints."""
    current = {_taint(t) for t in (node.get("spec") or {}).get("taints") or []}
    wanted = {_taint(t) for t in desired or []}
    args = [f"{k}={v}:{e}" if v else f"{k}:{e}" for k, v, e in sorted(wanted - current)]
    args += [f"{k}:{e}-" for k, _v, e in sorted(current - wanted) if _managed(k, prefix)]
    return args


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"node_label_args": node_label_args, "node_taint_args": node_taint_args}
