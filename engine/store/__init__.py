"""The store: everything FakeTagger keeps and exchanges about keys and tags.

The SQLite ledger (own identities, serials, signed tag records, history, contacts), its schema,
and the formats that leave the machine (signed tag records, public cards, key backups). The core
(protect, verify, pipeline) writes and reads tags through it; nothing here touches pixels.
"""
