"""Entity extraction: turning message text into typed values (e-mail, phone, amount, date, ids)."""

from core.entities.extractor import BUILTIN_ENTITIES, EntityExtractor, RegexEntity
from core.entities.offloop import extract_off_loop

__all__ = ["BUILTIN_ENTITIES", "EntityExtractor", "RegexEntity", "extract_off_loop"]
