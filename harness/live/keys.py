"""The live VM's SSH keys: made once per work dir on the host, never a password.

The client key logs in as root; the host key is the guest's dropbear key, so
the host knows it in advance and checks it on every connection. Both are
ECDSA P-256, which paramiko makes in milliseconds and dropbear accepts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import paramiko
from cryptography.hazmat.primitives import serialization

CLIENT_KEY = "client_ecdsa"
HOST_KEY = "host_ecdsa"


@dataclass(frozen=True)
class LiveKeys:
    client_key_path: Path  # private key, PEM, for paramiko and `ssh -i`
    client_key: paramiko.PKey
    host_key: paramiko.PKey

    @property
    def authorized_key(self) -> str:
        """The authorized_keys line that lets the client key in."""
        return f"{self.client_key.get_name()} {self.client_key.get_base64()} harness-live"

    def known_hosts_line(self, port: int) -> str:
        return f"[127.0.0.1]:{port} {self.host_key.get_name()} {self.host_key.get_base64()}"


def dropbear_private_key(key: paramiko.ECDSAKey) -> bytes:
    """`key` in dropbear's own private key format (what `dropbear -r` reads):
    the SSH wire encoding of the key type, the curve, the public point Q and
    the private scalar d, with no framing."""
    signing = key.signing_key
    point = signing.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    message = paramiko.Message()
    message.add_string(key.get_name())
    message.add_string(key.get_name().rsplit("-", 1)[-1])  # "nistp256"
    message.add_string(point)
    message.add_mpint(signing.private_numbers().private_value)
    return bytes(message.asbytes())


def _load_or_make(path: Path) -> paramiko.ECDSAKey:
    if path.is_file():
        return paramiko.ECDSAKey.from_private_key_file(str(path))
    key = paramiko.ECDSAKey.generate(bits=256)
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    key.write_private_key_file(str(partial))
    partial.chmod(0o600)  # ssh refuses a private key others can read
    partial.replace(path)
    return key


def ensure_keys(directory: Path) -> LiveKeys:
    """The work dir's live keys, made on first use."""
    directory.mkdir(parents=True, exist_ok=True)
    client = _load_or_make(directory / CLIENT_KEY)
    host = _load_or_make(directory / HOST_KEY)
    return LiveKeys(directory / CLIENT_KEY, client, host)
