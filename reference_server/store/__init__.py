"""Durable state of the reference center: the store interface and its SQLite implementation."""

from reference_server.store.interface import AuditProblem, AuditRecord, Store, StoredEvent, Transaction
from reference_server.store.sqlite import SqliteStore

__all__ = ["AuditProblem", "AuditRecord", "SqliteStore", "Store", "StoredEvent", "Transaction"]
