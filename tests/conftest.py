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
