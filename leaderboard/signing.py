"""Ed25519 signatures on private-split results: the maintainers' key pair, signing, checking.

A result is a JSON object; its signature covers the object's canonical JSON (sorted keys, no spaces,
UTF-8) without the `signature` member. The private key stays with the maintainers (`wdqa keygen`);
the public key is published in the suite's suite.json (`extra.maintainer_public_key`, hex).
Nothing here judges or reads a suite.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from wdqa.core.errors import WdqaError

ALGORITHM = "ed25519"
PRIVATE_KEY_FILE = "maintainer-ed25519.key"
PUBLIC_KEY_FILE = "maintainer-ed25519.pub"


class SigningKeyError(WdqaError):
    """A key file that cannot be read or written."""


def canonical_json(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def key_id(public_hex: str) -> str:
    """A short name for a public key, to tell keys apart in messages."""
    return hashlib.sha256(bytes.fromhex(public_hex)).hexdigest()[:16]


def generate_key_pair(folder: Path) -> tuple[Path, str]:
    """Write a new private key (PEM, readable by its owner only) to `folder`; return its path and
    the public key (hex), also written beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    key_path = folder / PRIVATE_KEY_FILE
    if key_path.exists():
        raise SigningKeyError(f"{key_path} exists; keep it, or move it away to make a new key pair")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    public = public_key_hex(key)
    (folder / PUBLIC_KEY_FILE).write_text(public + "\n")
    return key_path, public


def public_key_hex(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as err:
        raise SigningKeyError(
            f"cannot read the signing key {path}: {err}; pass the {PRIVATE_KEY_FILE} made by `wdqa keygen`"
        ) from err
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{path} is not an Ed25519 key; make one with `wdqa keygen`")
    return key


def read_public_key(text: str, where: str) -> str:
    """A hex Ed25519 public key from a .pub file's text or a manifest value."""
    value = text.strip()
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(value))
    except ValueError as err:
        raise SigningKeyError(f"{where} is not a hex Ed25519 public key (as `wdqa keygen` writes): {err}") from err
    return value


def sign(payload: dict[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    """`payload` with its signature added."""
    public = public_key_hex(key)
    value = base64.b64encode(key.sign(canonical_json(payload))).decode()
    return {**payload, "signature": {"algorithm": ALGORITHM, "key_id": key_id(public), "value": value}}


def signature_problem(result: dict[str, Any], public_hex: str) -> str | None:
    """Why `result`'s signature does not hold under `public_hex`, or None when it does."""
    signature = result.get("signature")
    if not isinstance(signature, dict) or not isinstance(signature.get("value"), str):
        return "it has no signature: only a result written by `wdqa score-private` with the maintainers' key counts"
    if signature.get("algorithm") != ALGORITHM:
        return f"its signature is {signature.get('algorithm')!r}, not {ALGORITHM}"
    payload = {k: v for k, v in result.items() if k != "signature"}
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex)).verify(
            base64.b64decode(signature["value"], validate=True), canonical_json(payload)
        )
    except (InvalidSignature, ValueError):
        return (
            f"its signature does not hold under the suite's maintainer key {key_id(public_hex)} (signed with key "
            f"{signature.get('key_id')}): it was edited after signing, or signed with another key"
        )
    return None
