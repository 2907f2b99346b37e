"""The household item dictionary: search, item detail, taxonomy tree — all from the knowledge package.

Nothing here knows a word of the vocabulary: items, their names, the search ranking (exact > prefix >
alias > partial > initials > fuzzy on the jamo spelling) and the taxonomy are the knowledge package's
(``services.common.knowledge``), the same one scan and chat classify with, so the dictionary and a
scan can never disagree. The item detail is built the way scan builds its result (``compose_answer``
over the item's rule document): ``pipeline_result`` has the scan result's shape.
"""

from __future__ import annotations

from typing import Any

import orjson

from services.common.ai import Classification, compose_answer
from services.common.errors import NotFound
from services.common.knowledge import Item, KnowledgeBase, TaxonomyNode

SEARCH_DEFAULT_LIMIT = 20
SEARCH_MAX_LIMIT = 50


def item_summary(item: Item) -> dict[str, Any]:
    return {
        "id": item.id,
        "name": item.name,
        "aliases": list(item.aliases),
        "major_category": item.major,
        "middle_category": item.middle,
        "minor_category": item.minor,
        "rule_id": item.rule_id,
        "summary": item.summary,
    }


class ItemDictionary:
    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb
        # Immutable: rendered once.
        self.tree_json = orjson.dumps({"majors": [self._node(node) for node in kb.taxonomy_tree()]})

    def search(self, query: str, limit: int) -> dict[str, Any]:
        hits = self.kb.search(query, limit)
        return {
            "query": query,
            "items": [{**item_summary(h.item), "match": {"kind": h.kind, "matched": h.matched}} for h in hits],
        }

    def detail(self, item_id: str) -> dict[str, Any]:
        item = self.kb.item(item_id)
        if item is None:
            raise NotFound("no such item in the dictionary", "ITEM_NOT_FOUND")
        rule = self.kb.rule(item.rule_id)
        classification = Classification(item.major, item.middle, item.minor, item.tags, group=item.group)
        return {
            **item_summary(item),
            "situation_tags": list(item.tags),
            "pipeline_result": {
                "classification_result": classification.as_dict(),
                "disposal_rules": rule.as_dict() if rule else None,
                "final_answer": compose_answer(self.kb, classification, rule).as_dict(),
            },
        }

    def _node(self, node: TaxonomyNode) -> dict[str, Any]:
        items = (self.kb.items[i] for i in node.item_ids)
        return {
            "name": node.name,
            "rule_id": node.rule_id,
            "rule_name": node.rule_name,
            "minors": list(dict.fromkeys(node.minors)),  # the domain lists repeat some spellings
            "items": [{"id": item.id, "name": item.name} for item in items],
            "middles": [self._node(child) for child in node.children],
        }
