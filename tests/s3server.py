"""A real S3-compatible server for the tests: moto's standalone HTTP server (moto_server),
started as a process on a free port, with one bucket.

Nothing of fsspec or s3fs is replaced: the code under test talks HTTP to this server as
it would to MinIO or AWS. moto accepts any keys; the tests use random, realistic-looking
ones so that a test that looks for a leaked secret looks for something unique.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import string
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from torchyard.s3 import ACCESS_KEY_ENV, ENDPOINT_ENV, REGION_ENVS, SECRET_KEY_ENV

# Not AWS's default region: a test passes only if the region reaches the client.
REGION = "eu-central-1"


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    bucket: str
    access_key: str
    secret_key: str
    log: Path
    region: str = REGION

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def env(self) -> dict[str, str]:
        """What the operator puts into a pod of an object with spec.storage.s3."""
        return {
            ENDPOINT_ENV: self.endpoint,
            ACCESS_KEY_ENV: self.access_key,
            SECRET_KEY_ENV: self.secret_key,
            **dict.fromkeys(REGION_ENVS, self.region),
        }

    def filesystem(self) -> Any:
        """An s3fs client of our own, to look at what the code under test wrote."""
        import s3fs

        return s3fs.S3FileSystem(
            key=self.access_key,
            secret=self.secret_key,
            client_kwargs={"endpoint_url": self.endpoint, "region_name": self.region},
            use_listings_cache=False,
            skip_instance_cache=True,
        )


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _key(length: int, alphabet: str) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _wait_until_serving(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"moto_server exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/moto-api/", timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"moto_server not serving at {url} after 60s") from None
            time.sleep(0.1)


@contextlib.contextmanager
def s3_server(host: str = "127.0.0.1") -> Iterator[S3Server]:
    """moto_server listening on `host` (the pods' bridge address in e2e tests)."""
    port = _free_port(host)
    log = Path(tempfile.mkdtemp(prefix="torchyard-moto-")) / "moto.log"
    moto = Path(sys.executable).with_name("moto_server")
    # No AWS settings of the caller's reach the server.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(moto), "-H", host, "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    endpoint = f"http://{host}:{port}"
    try:
        _wait_until_serving(endpoint, process, log)
        server = S3Server(
            endpoint=endpoint,
            bucket=f"torchyard-{secrets.token_hex(4)}",
            access_key="AKIA" + _key(16, string.ascii_uppercase + string.digits),
            secret_key=_key(40, string.ascii_letters + string.digits + "+/"),
            log=log,
        )
        fs = server.filesystem()
        fs.call_s3(
            "create_bucket",
            Bucket=server.bucket,
            CreateBucketConfiguration={"LocationConstraint": server.region},
        )
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def s3_environment(server: S3Server, cache: Path) -> Iterator[S3Server]:
    """This process (and the workloads it starts) configured as a pod of an object with
    spec.storage.s3 is: endpoint, region and keys in the environment."""
    from torchyard.storage import CACHE_ENV

    with pytest.MonkeyPatch.context() as patch:
        for name, value in {**server.env(), CACHE_ENV: str(cache)}.items():
            patch.setenv(name, value)
        yield server
