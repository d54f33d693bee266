"""Paths and URIs for weight and trace files: a local path, or any URI `pyarrow.fs` knows (s3://, gs://, hdfs://)."""

from __future__ import annotations

import os
import posixpath
from pathlib import Path

from pyarrow import fs as pafs


def is_uri(location: str) -> bool:
    return "://" in location


def join(base: str, *parts: str) -> str:
    if is_uri(base):
        return posixpath.join(base, *parts)
    return os.path.join(os.path.abspath(base), *parts)


def resolve(location: str) -> tuple[pafs.FileSystem, str]:
    """The filesystem and the path within it; local paths are made absolute."""
    if is_uri(location):
        try:
            return pafs.FileSystem.from_uri(location)
        except Exception as err:  # pyarrow raises several types for an unusable URI
            raise ValueError(f"cannot use storage location {location!r}: {err}") from None
    return pafs.LocalFileSystem(), os.path.abspath(location)


def write_atomically(location: str, data: bytes) -> None:
    """Write to a temporary name then move it into place: a reader never sees half a file."""
    filesystem, path = resolve(location)
    directory, name = posixpath.split(path) if is_uri(location) else os.path.split(path)
    filesystem.create_dir(directory, recursive=True)
    # A leading dot: pyarrow.dataset skips the file while it is being written.
    temporary = f"{directory}/.{name}.partial-{os.getpid()}"
    with filesystem.open_output_stream(temporary) as stream:
        stream.write(data)
    filesystem.move(temporary, path)


def read_bytes(location: str) -> bytes:
    filesystem, path = resolve(location)
    with filesystem.open_input_stream(path) as stream:
        return stream.read()


def delete_file(location: str) -> bool:
    """Remove a file; one already gone is no error. Returns whether there was one."""
    filesystem, path = resolve(location)
    try:
        filesystem.delete_file(path)
    except FileNotFoundError:
        return False
    return True


def upload_folder(folder: Path, location: str) -> str:
    """Put a local folder's files at `location` (a folder there), replacing what it held; returns `location`."""
    filesystem, path = resolve(location)
    filesystem.delete_dir_contents(path, missing_dir_ok=True)  # no figure of an earlier report lingers
    for file in sorted(Path(folder).iterdir()):
        if file.is_file():
            write_atomically(join(location, file.name), file.read_bytes())
    return location
