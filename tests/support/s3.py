"""A real S3-compatible server on this machine for the artifact-store tests: moto's ThreadedMotoServer (its
own HTTP server on a free loopback port; boto3 talks to it over TCP like to any S3 endpoint)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
from moto.server import ThreadedMotoServer


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    access_key_id: str = "tinyfleet-test"
    secret_access_key: str = "tinyfleet-test-secret"  # the local test server takes any
    region: str = "us-east-1"

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
        )

    def new_bucket(self) -> str:
        name = f"tinyfleet-{secrets.token_hex(6)}"
        self.client().create_bucket(Bucket=name)
        return name


@contextmanager
def local_s3_server() -> Iterator[S3Server]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield S3Server(f"http://{host}:{port}")
    finally:
        server.stop()
