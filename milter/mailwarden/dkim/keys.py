"""Keys through OpenSSL (the `cryptography` package): private keys from files, public keys from DNS."""

from __future__ import annotations

import base64
import binascii
import functools
import grp
import hashlib
import os
import pwd
import stat
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from mailwarden.dkim.tags import TagError, parse_tags

_HASHES = {"sha256": hashes.SHA256(), "sha1": hashes.SHA1()}
# Stateless parameter objects, shared by every signature and verification.
_PKCS1 = padding.PKCS1v15()
_SIGN_HASH = _HASHES["sha256"]


class KeyError_(ValueError):
    """A private key that cannot be used; the message says why."""


@dataclass(frozen=True)
class PrivateKey:
    """A parsed signing key: `sign(data)` returns the b= bytes for the canonical header data."""

    key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
    # What every message asks of the key, worked out once (the type checks go through abc).
    key_type: str = field(init=False)
    algorithm: str = field(init=False)
    bits: int = field(init=False)

    def __post_init__(self) -> None:
        is_rsa = isinstance(self.key, rsa.RSAPrivateKey)
        object.__setattr__(self, "key_type", "rsa" if is_rsa else "ed25519")
        object.__setattr__(self, "algorithm", f"{self.key_type}-sha256")
        bits = self.key.key_size if isinstance(self.key, rsa.RSAPrivateKey) else 256
        object.__setattr__(self, "bits", bits)

    def sign(self, data: bytes) -> bytes:
        if isinstance(self.key, rsa.RSAPrivateKey):
            return self.key.sign(data, _PKCS1, _SIGN_HASH)
        # RFC 8463: Ed25519 signs the SHA-256 hash of the canonical header data.
        return self.key.sign(hashlib.sha256(data).digest())

    def public_record(self) -> str:
        """The TXT record value: v=DKIM1; k=...; p=..."""
        der = _public_der(self.key.public_key())
        return f"v=DKIM1; k={self.key_type}; p={base64.b64encode(der).decode('ascii')}"

    def public_bytes(self) -> bytes:
        return _public_der(self.key.public_key())

    def to_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


def _public_der(pub: object) -> bytes:
    if isinstance(pub, rsa.RSAPublicKey):
        return pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if isinstance(pub, ed25519.Ed25519PublicKey):
        return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    raise TypeError(pub)


def parse_private_key(data: bytes) -> PrivateKey:
    """A PEM RSA or Ed25519 key, or a bare base64 Ed25519 seed (dknewkey's format)."""
    text = data.strip()
    if text.startswith(b"-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(text, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise KeyError_(f"not a usable PEM private key: {exc}") from None
        if isinstance(key, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
            return PrivateKey(key)
        raise KeyError_(f"unsupported key type {type(key).__name__} (RSA or Ed25519 only)")
    try:
        seed = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise KeyError_("neither PEM nor a base64 Ed25519 key") from None
    if len(seed) == 64:  # some tools write seed + public key
        seed = seed[:32]
    if len(seed) != 32:
        raise KeyError_(f"base64 Ed25519 key must be 32 bytes, got {len(seed)}")
    return PrivateKey(ed25519.Ed25519PrivateKey.from_private_bytes(seed))


def load_private_key(path: str | Path, require_safe: bool = True) -> PrivateKey:
    """Read and parse a key file once, at start-up; KeyError_ says what is wrong."""
    p = Path(path)
    try:
        st = p.stat()
        data = p.read_bytes()
    except OSError as exc:
        raise KeyError_(f"{p}: cannot read: {exc.strerror}") from None
    if require_safe:
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyError_(
                f"{p}: mode {stat.S_IMODE(st.st_mode):04o} lets group or others read it; "
                "chmod 0600 (or set dkim.require_safe_keys = false)"
            )
        if st.st_uid not in (0, os.geteuid()):
            raise KeyError_(f"{p}: owned by uid {st.st_uid}, not by root or us")
        unsafe = _unsafe_directory(p)
        if unsafe is not None:
            raise KeyError_(f"{p}: {unsafe}")
    try:
        return parse_private_key(data)
    except KeyError_ as exc:
        raise KeyError_(f"{p}: {exc}") from None


def _unsafe_directory(path: Path) -> str | None:
    """Why someone else could replace the key through a directory above it, as OpenDKIM's
    RequireSafeKeys checks every directory from the root down; None when no one can. Unlike
    OpenDKIM, a sticky directory (/tmp) is safe for what we own below it: the sticky bit keeps
    others from renaming or removing it."""
    me = os.geteuid()
    for directory in reversed(path.resolve().parents):
        st = directory.stat()
        if st.st_mode & stat.S_IWOTH and not st.st_mode & stat.S_ISVTX:
            return f"directory {directory} is writable by every user"
        if st.st_mode & stat.S_IWGRP and not _private_group(st.st_gid, me):
            return f"directory {directory} is writable by group {st.st_gid}, which other users are in"
        if st.st_mode & stat.S_IWUSR and st.st_uid not in (0, me):
            return f"directory {directory} is owned and writable by uid {st.st_uid}, not by root or us"
    return None


def _private_group(gid: int, me: int) -> bool:
    """Whether only root and we can be in group `gid` (members, or users whose group it is)."""
    allowed = {0, me}
    names = {p.pw_name for p in pwd.getpwall() if p.pw_uid in allowed}
    try:
        members = set(grp.getgrgid(gid).gr_mem)
    except KeyError:
        return False
    return members <= names and all(p.pw_uid in allowed for p in pwd.getpwall() if p.pw_gid == gid)


@dataclass(frozen=True)
class PublicKey:
    key_type: str  # rsa or ed25519
    key: rsa.RSAPublicKey | ed25519.Ed25519PublicKey
    bits: int
    hashes: tuple[str, ...]  # h= of the record, () for any
    strict_identity: bool  # t=s
    testing: bool  # t=y

    def verify(self, algorithm: str, signature: bytes, data: bytes) -> bool:
        try:
            if isinstance(self.key, rsa.RSAPublicKey):
                self.key.verify(signature, data, _PKCS1, _HASHES[algorithm.rpartition("-")[2]])
            else:
                self.key.verify(signature, hashlib.sha256(data).digest())
        except InvalidSignature:
            return False
        return True

    def der(self) -> bytes:
        return _public_der(self.key)


class KeyRecordError(ValueError):
    """A key record that cannot be used (permerror); the message is the reason."""


class KeyRevoked(KeyRecordError):
    pass


@functools.lru_cache(maxsize=1024)
def parse_key_record(record: bytes) -> PublicKey:
    """A DKIM key record (RFC 6376 3.6.1). Cached by content: the resolver caches by TTL."""
    try:
        tags = parse_tags(record)
    except TagError as exc:
        raise KeyRecordError(f"malformed key record: {exc}") from None
    if "v" in tags and tags["v"] != b"DKIM1":
        raise KeyRecordError("key record v= is not DKIM1")
    if "v" in tags and not record.lstrip().startswith(b"v"):
        raise KeyRecordError("key record v= is not the first tag")
    if "p" not in tags:
        raise KeyRecordError("key record has no p= tag")
    k = tags.get("k", b"rsa").decode("ascii", "replace").lower()
    services = [s.strip() for s in tags.get("s", b"*").split(b":")]
    if b"*" not in services and b"email" not in services:
        raise KeyRecordError("key record is not for email (s=)")
    flags = [f.strip() for f in tags.get("t", b"").split(b":")]
    hash_list = tuple(h.strip().decode("ascii", "replace").lower() for h in tags["h"].split(b":")) \
        if "h" in tags else ()
    raw = b"".join(tags["p"].split())
    if not raw:
        raise KeyRevoked("key revoked (empty p=)")
    try:
        der = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise KeyRecordError("key record p= is not base64") from None
    key: rsa.RSAPublicKey | ed25519.Ed25519PublicKey
    if k == "rsa":
        key = _load_rsa_public(der)
        bits = key.key_size
    elif k == "ed25519":
        if len(der) != 32:
            raise KeyRecordError(f"ed25519 key must be 32 bytes, got {len(der)}")
        key = ed25519.Ed25519PublicKey.from_public_bytes(der)
        bits = 256
    else:
        raise KeyRecordError(f"unknown key type k={k}")
    return PublicKey(k, key, bits, hash_list, b"s" in flags, b"y" in flags)


def _load_rsa_public(der: bytes) -> rsa.RSAPublicKey:
    try:
        key = serialization.load_der_public_key(der)
    except (ValueError, UnsupportedAlgorithm):
        # Some publish the bare PKCS#1 RSAPublicKey instead of SubjectPublicKeyInfo.
        b64 = base64.encodebytes(der)
        pem = b"-----BEGIN RSA PUBLIC KEY-----\n" + b64 + b"-----END RSA PUBLIC KEY-----\n"
        try:
            key = serialization.load_pem_public_key(pem)
        except (ValueError, UnsupportedAlgorithm):
            raise KeyRecordError("key record p= is not an RSA public key") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise KeyRecordError("key record k=rsa but p= is not an RSA key")
    return key
