"""Former home of the disposal knowledge base, kept so existing imports keep working.

New code imports from ``services.common.knowledge`` (``knowledge_base``, the models) or its modules
(``taxonomy``, ``models``, ``base``); this module only re-exports those names.
"""

from services.common.knowledge.base import KnowledgeBase, KnowledgeError, knowledge_base
from services.common.knowledge.models import RuleDocument
from services.common.knowledge.taxonomy import DESTINATIONS, MAJORS, MAX_STEPS, RECYCLABLE, UNCLASSIFIED
from services.common.knowledge.text import squash

__all__ = [
    "DESTINATIONS",
    "MAJORS",
    "MAX_STEPS",
    "RECYCLABLE",
    "UNCLASSIFIED",
    "KnowledgeBase",
    "KnowledgeError",
    "RuleDocument",
    "knowledge_base",
    "squash",
]
