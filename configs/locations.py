"""Dataset, checkpoint and user-master locations: a local path, a `file://` URI, or an object
store URI such as `s3a://bucket/prefix`. Locations are strings, never `Path`s: `Path("s3a://b/x")`
silently becomes `s3a:/b/x`. Listing and existence checks of what is at a location go through
Hadoop's FileSystem API in the jobs (utils/storage.py) and through pyarrow's file systems in the
tools and tests (utils/files.py).
"""

from __future__ import annotations

import re
from pathlib import Path

_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")


def scheme(location: str) -> str:
    """'s3a', 'file', or '' for a plain path."""
    match = _SCHEME.match(location)
    return match.group(1).lower() if match else ""


def normalize(value: str | Path) -> str:
    """A location as the settings keep it: plain paths absolute, no trailing slash.

    `s3://` is refused with the fix: Hadoop's S3 connector is `s3a://` (`s3://` has no file system
    in Hadoop 3, and failed only later, in the first job, with "No FileSystem for scheme").
    """
    text = str(value).strip()
    kind = scheme(text)
    if kind == "s3":
        raise ValueError(f"use s3a:// (Hadoop's S3 connector) instead of s3://: {text!r}")
    if kind == "s3a" and not re.match(r"^s3a://[^/]+", text):
        raise ValueError(f"an s3a location needs a bucket, e.g. s3a://bucket/prefix: {text!r}")
    if kind == "":
        return str(Path(text).expanduser().absolute())
    return text.rstrip("/")


def join(location: str, *parts: str) -> str:
    """`location` / part / part, for any kind of location."""
    return "/".join([location.rstrip("/"), *(p.strip("/") for p in parts)])


def local_path(location: str) -> Path | None:
    """The local path of a plain path or `file://` location; None for an object store."""
    kind = scheme(location)
    if kind == "":
        return Path(location)
    if kind == "file":
        return Path(location.removeprefix("file://"))
    return None


def is_object_store(location: str) -> bool:
    return local_path(location) is None
