"""The cluster secret and the keys derived from it (no sockets: see ``security`` for those).

Owns:

* **The secret.** 32 random bytes, written once as one base64url line in a file of mode 0600
  (``write_secret_file``); read back only from a regular file nobody else can read or write
  (``read_secret_file``); looked up as the explicit file, then ``P2PSCOOP_SECRET`` (the text
  itself), then ``P2PSCOOP_SECRET_FILE`` (``load_secret``).
* **Derivation.** HKDF-SHA256 (RFC 5869, ``hkdf_sha256``) turns (secret, cluster name) into
  ``ClusterKeys``: a CURVE keypair (z85), a public 16-hex-digit fingerprint for discovery,
  and the HELLO MAC key (``hello_mac``, ``check_mac``). Every HKDF label ends with the
  cluster name, so one secret with two names makes two unrelated clusters:

      info = b"p2pscoop/v1/" + label + b"\0" + cluster (UTF-8),  salt = b"p2pscoop/v1"
      label "curve" -> CURVE secret key (public key = zmq.curve_public of it)
      label "disc"  -> first 8 bytes, hex = fingerprint      label "hello" -> hello_key

Invariants: no repr, log line or exception message made here contains the secret, the CURVE
secret key or the HELLO key (errors name the file or variable, never its text). A secret file
is never overwritten, and is created with mode 0600 whatever the umask.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
import stat
from dataclasses import dataclass, field
from typing import Mapping

import zmq
from zmq.utils import z85

from ..core.errors import SecurityError

#: bytes of a new cluster secret, and the fewest a secret may have
SECRET_BYTES = 32
#: environment variables, in lookup order after an explicit --secret-file
ENV_SECRET = "P2PSCOOP_SECRET"
ENV_SECRET_FILE = "P2PSCOOP_SECRET_FILE"
#: longest cluster name (it must fit an mDNS label with room to spare)
MAX_CLUSTER_NAME = 63

HKDF_SALT = b"p2pscoop/v1"
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")
_MAKE_ONE = "make one with `p2pscoop secret {path}` and copy it (mode 0600) to every host"


# --------------------------------------------------------------------------- the secret file

def encode_secret(secret: bytes) -> str:
    """The one-line base64url text a secret file or ``P2PSCOOP_SECRET`` holds."""
    return base64.urlsafe_b64encode(secret).decode("ascii")


def decode_secret(text: str, source: str) -> bytes:
    """Decode base64url ``text`` read from ``source`` (named in errors; the text never is)."""
    text = text.strip()
    if not _BASE64URL.fullmatch(text):
        raise SecurityError(f"{source} is not a p2pscoop secret (one line of base64url text "
                            "expected); make a new one with `p2pscoop secret PATH`")
    try:
        secret = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise SecurityError(f"{source} is not valid base64url; make a new secret with "
                            "`p2pscoop secret PATH`") from None
    if len(secret) < SECRET_BYTES:
        raise SecurityError(f"{source} holds a {len(secret)}-byte secret; at least "
                            f"{SECRET_BYTES} bytes are needed: make a new one with "
                            "`p2pscoop secret PATH`")
    return secret


def write_secret_file(path: str) -> None:
    """Create ``path`` holding a new random cluster secret, mode 0600. Never overwrites.

    The file is created with O_CREAT|O_EXCL, so an existing file or symlink at ``path`` is
    refused and no other process can have opened it first. A partly written file is removed.
    """
    text = encode_secret(secrets.token_bytes(SECRET_BYTES)) + "\n"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise SecurityError(
            f"{path} already exists; p2pscoop never overwrites a secret (peers holding it "
            "would be locked out). Use that file as it is, or delete it yourself and copy "
            "the new secret to every host.") from None
    except OSError as exc:
        raise SecurityError(f"cannot create the secret file {path}: {exc.strerror}") from None
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        os.unlink(path)
        raise


def read_secret_file(path: str) -> bytes:
    """The secret in ``path``; refuses a missing, shared, malformed or too short one."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO must not block us
    except FileNotFoundError:
        raise SecurityError(f"no secret file at {path}: " + _MAKE_ONE.format(path=path)) from None
    except OSError as exc:
        raise SecurityError(f"cannot read the secret file {path}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SecurityError(f"{path} is not a regular file; " + _MAKE_ONE.format(path=path))
        if info.st_mode & 0o077:
            raise SecurityError(
                f"{path} is accessible by other users (mode {stat.S_IMODE(info.st_mode):04o}); "
                f"a cluster secret must be private: run `chmod 600 {path}`")
        raw = os.read(fd, 4097)
    finally:
        os.close(fd)
    if len(raw) > 4096:
        raise SecurityError(f"{path} is too large to be a p2pscoop secret")
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        text = "\x00"  # reported as malformed below
    return decode_secret(text, f"the secret file {path}")


def load_secret(secret_file: str | None,
                environ: Mapping[str, str] = os.environ) -> bytes | None:
    """The cluster secret: ``secret_file``, else ``$P2PSCOOP_SECRET`` (the base64url text),
    else the file ``$P2PSCOOP_SECRET_FILE``. None when none is given (empty counts as none)."""
    if secret_file:
        return read_secret_file(secret_file)
    text = environ.get(ENV_SECRET)
    if text:
        return decode_secret(text, f"${ENV_SECRET}")
    path = environ.get(ENV_SECRET_FILE)
    if path:
        return read_secret_file(path)
    return None


# --------------------------------------------------------------------------- derivation

def hkdf_sha256(key: bytes, *, salt: bytes, info: bytes, length: int = 32) -> bytes:
    """HKDF-SHA256 (RFC 5869): extract a pseudo-random key, expand it to ``length`` bytes."""
    if not 0 < length <= 255 * 32:
        raise ValueError(f"HKDF-SHA256 cannot produce {length} bytes")
    prk = hmac.new(salt or bytes(32), key, hashlib.sha256).digest()
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


def check_cluster_name(cluster: str) -> str:
    """``cluster`` if it is a usable cluster name, else SecurityError saying why."""
    if not isinstance(cluster, str) or not cluster:
        raise SecurityError("the cluster name must be a non-empty string (--cluster NAME)")
    if len(cluster) > MAX_CLUSTER_NAME or not cluster.isprintable():
        raise SecurityError(f"the cluster name {cluster!r} must be at most "
                            f"{MAX_CLUSTER_NAME} printable characters")
    return cluster


@dataclass(frozen=True)
class ClusterKeys:
    """Everything one (secret, cluster name) pair gives a peer. Build with ``derive``.

    ``public`` and ``secret`` are the z85 (40-byte) CURVE keypair that every peer of the
    cluster uses as server and as client; ``fingerprint`` (16 hex digits) may be published;
    ``hello_key`` (32 bytes) keys the HELLO MAC. The repr shows only the cluster and the
    fingerprint.
    """

    cluster: str
    public: bytes = field(repr=False)
    secret: bytes = field(repr=False)
    fingerprint: str
    hello_key: bytes = field(repr=False)

    @classmethod
    def derive(cls, secret: bytes, cluster: str) -> ClusterKeys:
        """Derive the keys of cluster ``cluster`` from the cluster secret ``secret``."""
        if not isinstance(secret, bytes) or len(secret) < SECRET_BYTES:
            raise SecurityError(f"a cluster secret must be at least {SECRET_BYTES} bytes")
        name = check_cluster_name(cluster).encode("utf-8")

        def expand(label: bytes) -> bytes:
            return hkdf_sha256(secret, salt=HKDF_SALT, info=b"p2pscoop/v1/" + label + b"\x00"
                               + name)

        curve_secret = z85.encode(expand(b"curve"))
        return cls(cluster=cluster, public=zmq.curve_public(curve_secret), secret=curve_secret,
                   fingerprint=expand(b"disc")[:8].hex(), hello_key=expand(b"hello"))


def hello_mac(keys: ClusterKeys, data: bytes) -> bytes:
    """HMAC-SHA256 of ``data`` under the cluster's HELLO key (32 bytes)."""
    return hmac.new(keys.hello_key, data, hashlib.sha256).digest()


def check_mac(keys: ClusterKeys, data: bytes, mac: bytes) -> bool:
    """Whether ``mac`` is the HELLO MAC of ``data`` (compared in constant time)."""
    return hmac.compare_digest(hello_mac(keys, data), mac)
