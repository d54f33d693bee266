"""Shared fixtures: a real MongoDB-protocol server (secantusd-py) on loopback, no mocks."""

from __future__ import annotations

import uuid

import pymongo
import pytest

from storage.embedded import EmbeddedMongo


@pytest.fixture(scope="session")
def mongo_server(tmp_path_factory):
    server = EmbeddedMongo(tmp_path_factory.mktemp("mongo") / "db")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def mongo_uri(mongo_server) -> str:
    return mongo_server.uri


@pytest.fixture
def db_name() -> str:
    """A database of its own per test, so tests never see each other's records."""
    return f"test_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def raw_db(mongo_uri, db_name):
    """The test's database through plain pymongo, as a user would read it."""
    client = pymongo.MongoClient(mongo_uri, tz_aware=True)
    yield client[db_name]
    client.drop_database(db_name)
    client.close()


@pytest.fixture(scope="session")
def s3_server():
    """A real S3-protocol server (moto's server mode) on loopback: the wire protocol, not a mock object."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(s3_server, monkeypatch) -> str:
    """`s3://<a bucket of its own>`, with the endpoint and credentials in the environment, where pyarrow,
    the AWS SDK and every process the test starts (Ray's included) take them from."""
    import boto3

    for name, value in {"AWS_ENDPOINT_URL": s3_server, "AWS_ACCESS_KEY_ID": "arena-test",
                        "AWS_SECRET_ACCESS_KEY": "arena-secret-key", "AWS_DEFAULT_REGION": "us-east-1",
                        "AWS_EC2_METADATA_DISABLED": "true"}.items():
        monkeypatch.setenv(name, value)
    bucket = f"arena-{uuid.uuid4().hex[:10]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    return f"s3://{bucket}"


def pytest_collection_modifyitems(items):
    """End-to-end tests (marked slow: a minute or more of Ray and the command line) first, so that on CI's cores
    none of them starts last and runs alone while the other workers, done with the fast tests, wait."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: file order otherwise
