"""Entity extraction: turning message text into typed values (e-mail, phone, amount, date, ids)."""

from core.entities.extractor import BUILTIN_ENTITIES, EntityExtractor, RegexEntity

__all__ = ["BUILTIN_ENTITIES", "EntityExtractor", "RegexEntity"]
