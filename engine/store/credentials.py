"""The ledger's Content Credentials tables: each key's C2PA chain and the user's trust anchors.

A small store object given the ledger's database handle (:class:`engine.store.db.Database`),
like the other stores: the ledger holds one as ``ledger.credentials``.
"""

from __future__ import annotations

from engine.credentials.chain import Chain, make_chain, parse_chain
from engine.credentials.trust import Anchor, parse_anchor
from engine.errors import CardError, CredentialsError, LedgerError
from engine.identity import KeyId, UnlockedIdentity, utc_now_iso
from engine.store.db import Database


class CredentialsStore:
    """Each own or contact key's C2PA chain, and the CA certificates the user added."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def chain_for(self, unlocked: UnlockedIdentity) -> tuple[Chain, bool]:
        """The C2PA chain of an own (unlocked) key, made and stored the first time; and whether
        it was made now (then the user's card should be exported again for contacts)."""
        hex_id = unlocked.key_id.hex()
        rows = self._db.read("SELECT c2pa_chain, public_key FROM identities WHERE key_id = ?",
                             (hex_id,))
        if not rows:
            raise LedgerError(f"no identity with key ID {unlocked.key_id}")
        if rows[0][0]:
            return parse_chain(rows[0][0], bytes(rows[0][1])), False
        chain = make_chain(unlocked)
        with self._db.write() as c:
            c.execute("UPDATE identities SET c2pa_chain = ? WHERE key_id = ? AND c2pa_chain IS"
                      " NULL", (chain.pem, hex_id))
        return chain, True

    def anchors(self) -> list[Anchor]:
        """Every CA certificate this user trusts: own keys', contacts', and the ones added."""
        found: list[Anchor] = []
        for table, who in (("identities", "your identity"), ("contacts", "contact")):
            rows = self._db.read(
                f"SELECT k.key_id, k.public_key, k.c2pa_chain, coalesce(p.name, k.name),"
                f" coalesce(k.parent_key_id, k.key_id) FROM {table} k LEFT JOIN {table} p"
                f" ON p.key_id = k.parent_key_id WHERE k.c2pa_chain IS NOT NULL")
            for _hex_id, public, pem, name, owner_hex in rows:
                try:
                    chain = parse_chain(pem, bytes(public))
                except CardError:
                    continue  # a damaged row is never trusted
                label = f"{who} {name} ({KeyId.from_hex(owner_hex)})"
                found.append(Anchor(chain.ca_pem, label, chain.serial_text))
        for label, pem in self._db.read("SELECT label, pem FROM trust_anchors ORDER BY added"):
            found.append(Anchor(pem, f"added certificate {label}"))
        return found

    def add_anchor(self, data: bytes, label: str | None = None) -> Anchor:
        """Trust the CA certificate in *data* (PEM or DER); CredentialsError when it is not one."""
        pem, subject = parse_anchor(data)
        anchor = Anchor(pem, (label or subject).strip()[:200] or subject)
        with self._db.write() as c:
            c.execute("INSERT INTO trust_anchors (fingerprint, label, pem, added) VALUES"
                      " (?, ?, ?, ?) ON CONFLICT (fingerprint) DO UPDATE SET label ="
                      " excluded.label", (anchor.fingerprint, anchor.label, pem, utc_now_iso()))
        return anchor

    def added_anchors(self) -> list[Anchor]:
        return [Anchor(pem, label) for label, pem in
                self._db.read("SELECT label, pem FROM trust_anchors ORDER BY added")]

    def remove_anchor(self, fingerprint: str) -> Anchor:
        """Stop trusting an added certificate, named by (a prefix of) its fingerprint."""
        want = fingerprint.strip().lower().replace(":", "")
        hits = [a for a in self.added_anchors() if want and a.fingerprint.startswith(want)]
        if len(hits) != 1:
            raise CredentialsError(f"no single added certificate has fingerprint {fingerprint!r}"
                                   f" ({len(hits)} match); see `faketagger trust list`")
        with self._db.write() as c:
            c.execute("DELETE FROM trust_anchors WHERE fingerprint = ?", (hits[0].fingerprint,))
        return hits[0]
