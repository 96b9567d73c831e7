"""Owner identities: Ed25519 key pairs, key IDs, the tag-MAC key and encrypted key files.

The image can only carry a short key ID (32 bits); everything that must be unforgeable is anchored
in Ed25519 signatures made with the private key kept here. See docs/FORMAT.md, "Tag records and
public cards", for the exact byte-level rules. Key backups are in :mod:`engine.store.backup`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from engine.atomic import write_atomic
from engine.errors import (
    IdentityError,
    KeyIdError,
    KeyStoreError,
    PassphraseError,
    WrongPassphraseError,
)

KEY_ID_BYTES = 4
MAC_KEY_INFO = b"faketagger/v1/tag-mac"
MAX_NAME_CHARS = 100
# Key-file passphrase stretching (see _stretch): scrypt with these costs, ~0.1 s on a laptop core.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
_KDF_HEADER = "FakeTagger-KDF:"
_DAMAGED_KEY = ("key file is damaged ({}): not a passphrase problem; restore the key from your key "
                "backup (faketagger identity restore FILE)")
PEM_BEGIN = "-----BEGIN ENCRYPTED PRIVATE KEY-----"
# Largest scrypt cost a key file may ask for: scrypt needs 128 * n * r bytes, and a crafted
# backup must not make us allocate more than this (ours: 128 * 2**15 * 8 = 32 MiB); p multiplies
# the run time, so it is capped too.
_SCRYPT_MAX_BYTES, _SCRYPT_MAX_P = 256 * 2**20, 4
# Bidirectional marks and overrides let a display name render as something else; refuse them.
_BIDI_CONTROLS = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Invisible format characters (Cf) are refused too, except the joiners that some scripts (Indic,
# Persian, emoji sequences) need to spell names correctly.
_JOINERS = {"\u200c", "\u200d"}
# Cc: controls; Cs: lone surrogates (not encodable, SQLite would fail on them); Zl/Zp: line and
# paragraph separators, which break one-line display.
_BAD_CATEGORIES = {"Cc", "Cs", "Zl", "Zp"}
_UTC_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|\+00:00)$")


# --- small shared helpers ---------------------------------------------------------------------


def utc_now_iso() -> str:
    """Current time as ISO-8601 UTC with a ``Z`` suffix, second precision (the signed form)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def is_utc_iso(text: object) -> bool:
    """True if *text* is an ISO-8601 timestamp explicitly in UTC (``Z`` or ``+00:00``)."""
    if not isinstance(text, str) or not _UTC_RE.match(text):
        return False
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def name_problem(name: object) -> str | None:
    """Why *name* cannot be a display name, or None. Names are shown to other people, so we
    refuse control, bidi, invisible-format and unencodable characters that could make one name
    look like another or break storage and display."""
    if not isinstance(name, str):
        return "name must be text"
    if not name.strip():
        return "name is empty"
    if name != name.strip():
        return "name has leading or trailing spaces"
    if len(name) > MAX_NAME_CHARS:
        return f"name is longer than {MAX_NAME_CHARS} characters"
    if any(_bad_name_char(c) for c in name):
        return "name contains control or invisible characters"
    return None


def _bad_name_char(c: str) -> bool:
    category = unicodedata.category(c)
    return (
        c in _BIDI_CONTROLS
        or category in _BAD_CATEGORIES
        or (category == "Cf" and c not in _JOINERS)
    )


def b64encode(data: bytes) -> str:
    """Standard base64 with padding, as used in every signed JSON field."""
    return base64.b64encode(data).decode("ascii")


def b64decode_strict(text: object) -> bytes | None:
    """Decode canonical base64 or return None; re-encoding must give the same text, so each byte
    string has exactly one accepted spelling (no whitespace, no alternative padding)."""
    if not isinstance(text, str):
        return None
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return None
    return raw if b64encode(raw) == text else None


# --- key IDs and fingerprints -----------------------------------------------------------------


_KEY_ID_TEXT_RE = re.compile(r"[0-9a-fA-F]{8}")


class KeyId(bytes):
    """A key ID: the 4 bytes an image carries to say whose tag it is (first 4 bytes of SHA-256
    of the raw Ed25519 public key). One type for every spelling, converted only at the edges:

    * ``k.hex()`` / :meth:`from_hex`: 8 lowercase hex digits, the form the ledger's key-ID
      columns, tag records, cards and file names store;
    * ``str(k)`` / ``k.text`` / ``f"{k}"`` / :meth:`parse`: ``3F2A-91C0``, what people see and type;
    * :attr:`as_int` / :meth:`from_int`: the 32-bit number packed into the payload word.

    It *is* 4 bytes (a ``bytes`` subclass), so it equals, hashes and packs like the plain bytes.
    Note that SQLite binds it as a BLOB: key-ID columns hold text, so pass ``k.hex()``.
    """

    __slots__ = ()

    def __new__(cls, raw: bytes | bytearray | memoryview) -> KeyId:
        if not isinstance(raw, bytes | bytearray | memoryview):
            raise TypeError(f"a key ID is made from 4 bytes, got {type(raw).__name__}")
        if len(raw) != KEY_ID_BYTES:
            raise ValueError(f"a key ID is {KEY_ID_BYTES} bytes, got {len(raw)}")
        return super().__new__(cls, raw)

    @classmethod
    def of(cls, public_raw: bytes) -> KeyId:
        """The key ID of a raw 32-byte Ed25519 public key."""
        if len(public_raw) != 32:
            raise ValueError("an Ed25519 public key is 32 bytes")
        return cls(hashlib.sha256(public_raw).digest()[:KEY_ID_BYTES])

    @classmethod
    def parse(cls, text: str) -> KeyId:
        """A key ID as people type it: ``3F2A-91C0`` / ``3f2a91c0`` (dash and spaces optional,
        any case). KeyIdError with a one-line reason otherwise."""
        cleaned = text.strip().replace("-", "").replace(" ", "") if isinstance(text, str) else ""
        if not _KEY_ID_TEXT_RE.fullmatch(cleaned):
            raise KeyIdError(f"not a key ID: {text!r} (expected 8 hex digits like 3F2A-91C0)")
        return cls(bytes.fromhex(cleaned))

    @classmethod
    def from_hex(cls, digits: str) -> KeyId:
        """A stored key ID: exactly 8 hex digits (what :meth:`hex` gives)."""
        if not isinstance(digits, str) or not _KEY_ID_TEXT_RE.fullmatch(digits):
            raise KeyIdError(f"not a stored key ID: {digits!r} (expected 8 hex digits)")
        return cls(bytes.fromhex(digits))

    @classmethod
    def from_int(cls, number: int) -> KeyId:
        """The key ID whose big-endian 32-bit number is *number* (the payload's field)."""
        if not isinstance(number, int) or isinstance(number, bool) \
                or not 0 <= number < 1 << (8 * KEY_ID_BYTES):
            raise ValueError(f"a key ID number is 0..{(1 << (8 * KEY_ID_BYTES)) - 1}, "
                             f"got {number!r}")
        return cls(number.to_bytes(KEY_ID_BYTES, "big"))

    @classmethod
    def coerce(cls, value: bytes | bytearray | str) -> KeyId:
        """Whatever a caller holds: a KeyId, its 4 bytes, or any text form (:meth:`parse`);
        KeyIdError otherwise. For entry points that take a key ID from outside the engine."""
        if isinstance(value, cls):
            return value
        if isinstance(value, bytes | bytearray) and len(value) == KEY_ID_BYTES:
            return cls(value)
        if isinstance(value, str):
            return cls.parse(value)
        raise KeyIdError(f"not a key ID: {value!r}")

    @property
    def text(self) -> str:
        """Readable form, e.g. ``3F2A-91C0``."""
        digits = self.hex().upper()
        return f"{digits[:4]}-{digits[4:]}"

    @property
    def as_int(self) -> int:
        """The big-endian 32-bit number (the payload word's key-ID field)."""
        return int.from_bytes(self, "big")

    def __str__(self) -> str:
        return self.text

    def __format__(self, spec: str) -> str:
        return format(self.text, spec)

    def __repr__(self) -> str:
        return f"KeyId({self.text!r})"


def fingerprint(public_raw: bytes) -> str:
    """Readable fingerprint for comparing keys out of band: first 20 bytes of SHA-256 of the raw
    public key, uppercase hex in 10 groups of 4. It starts with the key ID's 8 digits."""
    digest = hashlib.sha256(public_raw).hexdigest()[:40].upper()
    return " ".join(digest[i : i + 4] for i in range(0, 40, 4))


def derive_mac_key(private_raw: bytes) -> bytes:
    """Key for the short in-image tag MAC: HKDF-SHA256(ikm=32-byte Ed25519 seed, salt=None,
    info=b"faketagger/v1/tag-mac", length=32). A one-way derivation, so storing it (the ledger does,
    to check own tags without the passphrase) reveals nothing about the signing key."""
    return derive_secret(private_raw, MAC_KEY_INFO)


def derive_secret(private_raw: bytes, info: bytes) -> bytes:
    """32 bytes for one purpose (*info*) from the identity's seed: HKDF-SHA256, salt None."""
    if len(private_raw) != 32:
        raise ValueError("an Ed25519 private key seed is 32 bytes")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(private_raw)


# --- identities -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    """Public half of an owner identity: what may be shown, stored unencrypted and shared."""

    name: str
    public_raw: bytes
    key_id: KeyId
    created: str

    def __post_init__(self) -> None:
        if len(self.public_raw) != 32 or self.key_id != KeyId.of(self.public_raw):
            raise ValueError("Identity key_id must be KeyId.of(public_raw)")
        if type(self.key_id) is not KeyId:
            object.__setattr__(self, "key_id", KeyId(self.key_id))

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_raw)


def _private_raw(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )


def _public_raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


class UnlockedIdentity:
    """An identity whose private key is in memory: it can sign records and card headers. Keep these
    short-lived; the GUI should drop them once a protect job is done."""

    def __init__(self, identity: Identity, private_key: Ed25519PrivateKey) -> None:
        if _public_raw(private_key.public_key()) != identity.public_raw:
            raise KeyStoreError("private key does not match the identity's public key")
        self.identity = identity
        self._key = private_key

    @classmethod
    def generate(cls, name: str, created: str | None = None) -> UnlockedIdentity:
        """A fresh key pair with *name*; ``created`` defaults to now (UTC)."""
        problem = name_problem(name)
        if problem:
            raise IdentityError(problem)
        key = Ed25519PrivateKey.generate()
        public_raw = _public_raw(key.public_key())
        ident = Identity(name, public_raw, KeyId.of(public_raw), created or utc_now_iso())
        return cls(ident, key)

    @property
    def name(self) -> str:
        return self.identity.name

    @property
    def public_raw(self) -> bytes:
        return self.identity.public_raw

    @property
    def key_id(self) -> KeyId:
        return self.identity.key_id

    @property
    def created(self) -> str:
        return self.identity.created

    def sign(self, data: bytes) -> bytes:
        """Ed25519 signature (64 bytes) over *data*."""
        return self._key.sign(data)

    @cached_property
    def mac_key(self) -> bytes:
        return derive_mac_key(_private_raw(self._key))

    def derive_secret(self, info: bytes) -> bytes:
        """A one-way secret for one purpose (engine.credentials.chain's signing key)."""
        if info == MAC_KEY_INFO:
            raise ValueError("the tag-MAC key has its own property")
        return derive_secret(_private_raw(self._key), info)

    def sign_certificate(self, builder: x509.CertificateBuilder) -> x509.Certificate:
        """*builder* signed with the identity key (the Content Credentials CA certificate, and
        the certificate it issues), so the key never leaves this object."""
        return builder.sign(self._key, None)

    def encrypt(self, passphrase: str) -> bytes:
        """The key-file bytes for this identity, protected by *passphrase*."""
        return encrypt_private_key(self._key, passphrase)

    def __repr__(self) -> str:  # never show key material
        return f"UnlockedIdentity({self.name!r}, {self.identity.key_id})"


# --- encrypted key files ----------------------------------------------------------------------


def check_passphrase(passphrase: str) -> None:
    """Raise PassphraseError for an unusable passphrase (checked before any slow work)."""
    _passphrase_bytes(passphrase)


def _passphrase_bytes(passphrase: str) -> bytes:
    if not isinstance(passphrase, str) or not passphrase.strip():
        raise PassphraseError("passphrase is empty; choose a passphrase to protect your key")
    # NFC so the same passphrase typed on another OS / keyboard layout gives the same bytes.
    return unicodedata.normalize("NFC", passphrase).encode("utf-8")


def _stretch(passphrase: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    """Why: BestAvailableEncryption for PKCS8 uses PBKDF2 with only 2048 iterations (measured with
    cryptography 50), cheap to brute-force if the key file leaks. We first stretch the passphrase
    with scrypt and hand the result to BestAvailableEncryption as the PEM password."""
    derived = Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase)
    return derived.hex().encode("ascii")


def encrypt_private_key(key: Ed25519PrivateKey, passphrase: str) -> bytes:
    """Key-file bytes: one ``FakeTagger-KDF:`` line with the scrypt parameters, then a PKCS8
    ``ENCRYPTED PRIVATE KEY`` PEM block whose password is the stretched passphrase."""
    salt = secrets.token_bytes(16)
    password = _stretch(_passphrase_bytes(passphrase), salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password),
    )
    params = f"scrypt n={SCRYPT_N} r={SCRYPT_R} p={SCRYPT_P} salt={b64encode(salt)}"
    header = f"{_KDF_HEADER} {params} check={_file_check(params, pem)}\n"
    return header.encode("ascii") + pem


def _file_check(params: str, pem: bytes) -> str:
    """16 hex digits of SHA-256 over the KDF parameters and the PEM block: tells a damaged key
    file from a wrong passphrase (the cipher alone cannot: both fail to decrypt). Not a secret
    and not a MAC: it only detects accidents, the passphrase still guards the key."""
    return hashlib.sha256(params.encode("ascii") + b"\n" + pem).hexdigest()[:16]


def decrypt_private_key(data: bytes, passphrase: str) -> Ed25519PrivateKey:
    """Inverse of :func:`encrypt_private_key`. Wrong passphrase → WrongPassphraseError; anything
    else unreadable → KeyStoreError. A plain encrypted PKCS8 PEM (no KDF line) is also accepted."""
    secret = _passphrase_bytes(passphrase)
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise KeyStoreError("key file is damaged (not text)") from None
    first, _, rest = text.partition("\n")
    if first.startswith(_KDF_HEADER):
        match = re.fullmatch(
            r"(scrypt n=(\d{1,8}) r=(\d{1,3}) p=(\d{1,3}) salt=([A-Za-z0-9+/=]{1,64}))"
            r"(?: check=([0-9a-f]{16}))?",
            first[len(_KDF_HEADER) :].strip(),
        )
        salt = b64decode_strict(match.group(5)) if match else None
        if not match or salt is None:
            raise KeyStoreError(_DAMAGED_KEY.format("bad KDF line"))
        n, r, p = (int(match.group(i)) for i in (2, 3, 4))
        # Refused before any scrypt work: a crafted key file or backup must not be able to make
        # us allocate more than _SCRYPT_MAX_BYTES (scrypt needs 128 * n * r) or run for long.
        if n < 2 or n & (n - 1) or r < 1 or 128 * n * r > _SCRYPT_MAX_BYTES \
                or not 1 <= p <= _SCRYPT_MAX_P:
            raise KeyStoreError("key file has unsupported KDF parameters")
        # Files written since the check field exists carry it; older ones decrypt as before.
        if match.group(6) and match.group(6) != _file_check(match.group(1), rest.encode("ascii")):
            raise KeyStoreError(_DAMAGED_KEY.format("its checksum does not match"))
        password, pem = _stretch(secret, salt, n, r, p), rest
        intact = bool(match.group(6))  # the checksum held: the bytes are as written
    else:
        password, pem, intact = secret, text, False
    if PEM_BEGIN not in pem:
        raise KeyStoreError("key file is damaged or not an encrypted private key")
    try:
        key = serialization.load_pem_private_key(pem.encode("ascii"), password=password)
    except ValueError as exc:
        # With a wrong key the cipher's padding still checks about once in 256 tries, and the
        # garbage then fails as "could not deserialize": on a file whose checksum held, every
        # decryption failure is the passphrase's.
        if intact or "password" in str(exc).lower():
            raise WrongPassphraseError("wrong passphrase for this key") from None
        raise KeyStoreError("key file is damaged and cannot be read") from None
    except (TypeError, UnsupportedAlgorithm):
        raise KeyStoreError("key file is damaged or uses an unsupported format") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyStoreError("key file does not hold an Ed25519 key")
    return key


def write_private_file(path: Path, data: bytes, *, overwrite: bool = False) -> None:
    """Write *data* atomically with mode 0600 (:func:`engine.atomic.write_atomic`): the temp file
    is created 0600, so the secret is never readable by others, not even briefly. Without
    *overwrite* the final step cannot replace a key file that another process wrote meanwhile
    (:func:`engine.atomic.publish`); that, like an existing file, is a KeyStoreError."""
    path = Path(path)
    try:
        write_atomic(path, data, overwrite=overwrite, mode=0o600)
    except FileExistsError:
        raise KeyStoreError(f"refusing to overwrite existing key file {path}") from None


def load_unlocked(identity: Identity, key_file: bytes, passphrase: str) -> UnlockedIdentity:
    """Decrypt *key_file* and check it belongs to *identity*."""
    key = decrypt_private_key(key_file, passphrase)
    if _public_raw(key.public_key()) != identity.public_raw:
        raise KeyStoreError(f"key file does not belong to identity {identity.key_id}")
    return UnlockedIdentity(identity, key)
