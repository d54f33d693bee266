"""The embedded MongoDB-protocol server (secantusdb's `secantusd-py`) for runs and tests with no `--mongo-uri`."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pymongo


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _executable() -> str:
    beside_python = Path(sys.executable).with_name("secantusd-py")
    found = str(beside_python) if beside_python.exists() else shutil.which("secantusd-py")
    if not found:
        raise RuntimeError("secantusd-py not found: install the secantusdb package (pip install secantusdb)")
    return found


class EmbeddedMongo:
    """Starts `secantusd-py` on a free loopback port with its data in `storage_path`; stops it on exit.

    The server runs in its own session, so a Ctrl-C aimed at the run does not kill the database
    before the run has recorded that it was interrupted.
    """

    def __init__(self, storage_path: str | Path, host: str = "127.0.0.1", port: int | None = None,
                 log_path: str | Path | None = None):
        self.storage_path = Path(storage_path)
        self.host = host
        self.port = port
        self.log_path = Path(log_path) if log_path else self.storage_path.with_name("secantusd.log")
        self.process: subprocess.Popen | None = None

    @property
    def uri_file(self) -> Path:
        """Where the address of the running server is kept (`<storage>.uri`), so readers of a run that is
        still going (the report) reach its server: a second one cannot open the same storage."""
        return self.storage_path.with_name(self.storage_path.name + ".uri")

    @property
    def uri(self) -> str:
        return f"mongodb://{self.host}:{self.port}/"

    def start(self, timeout: float = 60.0) -> str:
        self.storage_path.mkdir(parents=True, exist_ok=True)
        self.port = self.port or _free_port(self.host)
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [_executable(), "--host", self.host, "--port", str(self.port), "--storage-path", str(self.storage_path),
             "--log-level", "WARNING"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"embedded database exited with code {self.process.returncode}; see {self.log_path}")
            try:
                with pymongo.MongoClient(self.uri, serverSelectionTimeoutMS=500) as client:
                    client.admin.command("ping")
                self.uri_file.write_text(self.uri)
                return self.uri
            except pymongo.errors.PyMongoError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"embedded database did not answer on {self.uri} within {timeout:.0f} s; see {self.log_path}")

    def stop(self, timeout: float = 30.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        if self.uri_file.exists() and self.uri_file.read_text() == self.uri:
            self.uri_file.unlink()
        self.process.send_signal(signal.SIGTERM)  # lets WiredTiger close cleanly
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def __enter__(self) -> EmbeddedMongo:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
