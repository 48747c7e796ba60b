"""The cluster secret file, its lookup, and what is derived from it (transport/secret.py)."""

import base64
import os
import stat

import pytest
import zmq
from zmq.utils import z85

from p2pscoop.errors import P2PScoopError, SecurityError
from p2pscoop.transport.security import (ClusterKeys, check_mac, encode_secret, hello_mac,
                                         hkdf_sha256, load_secret, read_secret_file,
                                         write_secret_file)

SECRET = bytes(range(32))
OTHER = bytes(range(1, 33))


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / "cluster.secret")


def write_text(path, text, mode=0o600):
    with open(path, "w") as out:
        out.write(text)
    os.chmod(path, mode)


# --------------------------------------------------------------------------- the file

def test_security_error_is_a_p2pscoop_error():
    assert issubclass(SecurityError, P2PScoopError)


def test_a_new_secret_file_has_mode_0600_whatever_the_umask(path):
    old = os.umask(0)
    try:
        write_secret_file(path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(path) as src:
        lines = src.read().splitlines()
    assert len(lines) == 1
    assert len(base64.urlsafe_b64decode(lines[0])) == 32


def test_a_written_secret_reads_back_and_each_one_is_new(tmp_path):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    write_secret_file(a)
    write_secret_file(b)
    assert len(read_secret_file(a)) == 32
    assert read_secret_file(a) != read_secret_file(b)


def test_an_existing_file_is_never_overwritten(path):
    write_secret_file(path)
    before = open(path).read()
    with pytest.raises(SecurityError, match="already exists") as info:
        write_secret_file(path)
    assert path in str(info.value)
    assert "delete" in str(info.value)
    assert open(path).read() == before


def test_a_symlink_is_not_followed_when_writing(tmp_path):
    target = tmp_path / "elsewhere"
    link = tmp_path / "link"
    link.symlink_to(target)
    with pytest.raises(SecurityError, match="already exists"):
        write_secret_file(str(link))
    assert not target.exists()


def test_writing_into_a_missing_directory_says_so(tmp_path):
    with pytest.raises(SecurityError, match="cannot create"):
        write_secret_file(str(tmp_path / "no" / "such" / "dir"))


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o602, 0o644, 0o660])
def test_a_file_others_can_read_or_write_is_refused_like_ssh(path, mode):
    write_secret_file(path)
    os.chmod(path, mode)
    with pytest.raises(SecurityError) as info:
        read_secret_file(path)
    assert f"chmod 600 {path}" in str(info.value)
    assert f"{mode:04o}" in str(info.value)


def test_mode_0400_is_accepted(path):
    write_secret_file(path)
    os.chmod(path, 0o400)
    assert len(read_secret_file(path)) == 32


def test_a_missing_file_says_how_to_make_one(path):
    with pytest.raises(SecurityError) as info:
        read_secret_file(path)
    assert f"p2pscoop secret {path}" in str(info.value)


def test_a_directory_is_refused(tmp_path):
    os.chmod(tmp_path, 0o700)
    with pytest.raises(SecurityError, match="not a regular file"):
        read_secret_file(str(tmp_path))


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(SecurityError, match="not a regular file"):
        read_secret_file(str(fifo))


@pytest.mark.parametrize("text", [
    "", "\n", "not base64 at all!", "abc def", "abcd\nefgh\n", "é" * 44, "a" * 5,
    "=" + "A" * 43,
])
def test_malformed_content_is_refused(path, text):
    write_text(path, text)
    with pytest.raises(SecurityError) as info:
        read_secret_file(path)
    assert "p2pscoop secret" in str(info.value)


def test_binary_content_is_refused(path):
    with open(path, "wb") as out:
        out.write(b"\xff\xfe" * 30)
    os.chmod(path, 0o600)
    with pytest.raises(SecurityError, match="not a p2pscoop secret"):
        read_secret_file(path)


def test_a_huge_file_is_refused(path):
    write_text(path, "A" * 10_000)
    with pytest.raises(SecurityError, match="too large"):
        read_secret_file(path)


def test_a_short_secret_is_refused_and_its_text_is_not_echoed(path):
    text = encode_secret(b"s3cr" * 4)  # 16 bytes
    write_text(path, text + "\n")
    with pytest.raises(SecurityError, match="16-byte") as info:
        read_secret_file(path)
    assert text not in str(info.value)


def test_padding_is_optional_and_longer_secrets_are_fine(path):
    write_text(path, encode_secret(SECRET).rstrip("=") + "\n")
    assert read_secret_file(path) == SECRET
    os.unlink(path)
    write_text(path, encode_secret(SECRET * 2))
    assert read_secret_file(path) == SECRET * 2


# --------------------------------------------------------------------------- lookup

def test_lookup_order_file_then_env_text_then_env_file(tmp_path):
    explicit, from_env = str(tmp_path / "explicit"), str(tmp_path / "env")
    write_text(explicit, encode_secret(SECRET))
    write_text(from_env, encode_secret(OTHER))
    third = bytes(range(2, 34))
    environ = {"P2PSCOOP_SECRET": encode_secret(third), "P2PSCOOP_SECRET_FILE": from_env}
    assert load_secret(explicit, environ) == SECRET
    assert load_secret(None, environ) == third
    del environ["P2PSCOOP_SECRET"]
    assert load_secret(None, environ) == OTHER
    del environ["P2PSCOOP_SECRET_FILE"]
    assert load_secret(None, environ) is None


def test_empty_variables_count_as_unset():
    assert load_secret(None, {"P2PSCOOP_SECRET": "", "P2PSCOOP_SECRET_FILE": ""}) is None
    assert load_secret("", {}) is None


def test_a_bad_env_secret_names_the_variable_not_the_text():
    bad = "zzzz" * 4
    with pytest.raises(SecurityError, match=r"\$P2PSCOOP_SECRET") as info:
        load_secret(None, {"P2PSCOOP_SECRET": bad})
    assert bad not in str(info.value)


def test_the_env_secret_file_is_checked_like_any_file(path):
    write_secret_file(path)
    os.chmod(path, 0o644)
    with pytest.raises(SecurityError, match="chmod 600"):
        load_secret(None, {"P2PSCOOP_SECRET_FILE": path})


def test_the_default_environment_is_os_environ(monkeypatch):
    monkeypatch.setenv("P2PSCOOP_SECRET", encode_secret(SECRET))
    assert load_secret(None) == SECRET


# --------------------------------------------------------------------------- derivation

def test_hkdf_matches_rfc5869_test_case_1():
    okm = hkdf_sha256(b"\x0b" * 22, salt=bytes(range(13)), info=bytes(range(0xf0, 0xfa)),
                      length=42)
    assert okm.hex() == ("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
                         "34007208d5b887185865")


def test_hkdf_matches_rfc5869_test_case_3_empty_salt_and_info():
    okm = hkdf_sha256(b"\x0b" * 22, salt=b"", info=b"", length=42)
    assert okm.hex() == ("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
                         "9d201395faa4b61a96c8")


def test_derivation_is_deterministic_and_well_formed():
    keys = ClusterKeys.derive(SECRET, "lab")
    assert keys == ClusterKeys.derive(SECRET, "lab")
    assert len(keys.public) == len(keys.secret) == 40
    assert zmq.curve_public(keys.secret) == keys.public
    assert len(z85.decode(keys.public)) == 32
    assert len(keys.fingerprint) == 16 and int(keys.fingerprint, 16) >= 0
    assert len(keys.hello_key) == 32
    assert len({keys.secret, keys.public, keys.hello_key}) == 3


@pytest.mark.parametrize("secret, cluster", [(OTHER, "lab"), (SECRET, "lab2"), (SECRET, "Lab")])
def test_another_secret_or_cluster_name_gives_unrelated_keys(secret, cluster):
    mine, theirs = ClusterKeys.derive(SECRET, "lab"), ClusterKeys.derive(secret, cluster)
    assert mine.public != theirs.public
    assert mine.secret != theirs.secret
    assert mine.fingerprint != theirs.fingerprint
    assert mine.hello_key != theirs.hello_key


def test_the_fingerprint_reveals_no_key_material():
    keys = ClusterKeys.derive(SECRET, "lab")
    for material in (SECRET, z85.decode(keys.secret), z85.decode(keys.public), keys.hello_key):
        assert keys.fingerprint not in material.hex()
        assert bytes.fromhex(keys.fingerprint) not in material


def test_repr_and_str_show_neither_secret_nor_keys():
    keys = ClusterKeys.derive(SECRET, "lab")
    for text in (repr(keys), str(keys), f"{keys}"):
        assert "lab" in text and keys.fingerprint in text
        for leak in (keys.secret.decode(), keys.hello_key.hex(), repr(keys.hello_key),
                     encode_secret(SECRET), keys.public.decode(), repr(SECRET)):
            assert leak not in text


@pytest.mark.parametrize("cluster", ["", "x" * 64, "tab\there", "nul\x00", None, b"bytes"])
def test_bad_cluster_names_are_refused(cluster):
    with pytest.raises(SecurityError, match="cluster name"):
        ClusterKeys.derive(SECRET, cluster)


@pytest.mark.parametrize("secret", [b"", SECRET[:31], "a string" * 8])
def test_short_or_non_bytes_secrets_are_refused(secret):
    with pytest.raises(SecurityError, match="at least 32 bytes"):
        ClusterKeys.derive(secret, "lab")


def test_hello_mac_checks_data_and_cluster():
    keys, other = ClusterKeys.derive(SECRET, "lab"), ClusterKeys.derive(SECRET, "lab2")
    mac = hello_mac(keys, b"hello bytes")
    assert len(mac) == 32
    assert check_mac(keys, b"hello bytes", mac)
    assert not check_mac(keys, b"hello bytez", mac)
    assert not check_mac(other, b"hello bytes", mac)
    assert not check_mac(keys, b"hello bytes", mac[:-1])
    assert not check_mac(keys, b"hello bytes", b"")
