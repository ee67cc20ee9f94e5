"""Reading and writing datasets outside Spark (the report, the generator's user master, the
tests' readers of outputs), on local disk and on S3 alike, through pyarrow's file systems.

A streaming file sink's `_spark_metadata` log says which files a committed micro-batch wrote: a
reader lists the files from that log, not from the folder, which may also hold the files of a
micro-batch that was killed before it committed (the same rule as Spark's own reader).
"""

from __future__ import annotations

import json
import re
from urllib.parse import unquote, urlparse

import pandas as pd
import pyarrow.fs as pafs

from configs import locations
from configs.spark_config import Settings, get_settings

SINK_LOG = "_spark_metadata"


def filesystem(location: str, settings: Settings | None = None) -> tuple[pafs.FileSystem, str]:
    """The pyarrow file system of a location, and the location's path in it."""
    local = locations.local_path(location)
    if local is not None:
        return pafs.LocalFileSystem(), str(local)
    kind = locations.scheme(location)
    if kind != "s3a":
        raise ValueError(f"no reader for {kind}:// locations outside Spark: {location}")
    return pafs.S3FileSystem(**_s3_options(settings or get_settings())), location.removeprefix("s3a://")


def _s3_options(settings: Settings) -> dict:
    options: dict = {"region": settings.aws_region}
    if settings.s3_endpoint_url:
        endpoint = urlparse(settings.s3_endpoint_url)
        options.update(endpoint_override=endpoint.netloc, scheme=endpoint.scheme or "https")
    if settings.aws_access_key_id and settings.aws_secret_access_key:
        options.update(access_key=settings.aws_access_key_id.get_secret_value(),
                       secret_key=settings.aws_secret_access_key.get_secret_value())
    return options


def ensure_bucket(location: str, settings: Settings | None = None) -> str | None:
    """Create the bucket of an s3a:// location if it is missing; its name (None for local)."""
    if locations.local_path(location) is not None:
        return None
    fs, path = filesystem(location, settings)
    bucket = path.split("/", 1)[0]
    if not exists(fs, bucket):
        pafs.S3FileSystem(**{**_s3_options(settings or get_settings()), "allow_bucket_creation": True}).create_dir(
            bucket)
    return bucket


def exists(fs: pafs.FileSystem, path: str) -> bool:
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def committed_files(fs: pafs.FileSystem, path: str) -> list[str] | None:
    """Files a file sink's metadata log holds as added (None when the folder has no log)."""
    log_dir = f"{path}/{SINK_LOG}"
    if fs.get_file_info(log_dir).type != pafs.FileType.Directory:
        return None
    entries = [i for i in fs.get_file_info(pafs.FileSelector(log_dir))
               if re.fullmatch(r"\d+(\.compact)?", i.base_name)]
    entries.sort(key=lambda i: int(i.base_name.split(".")[0]))
    # A .compact entry holds every file added up to it: reading starts at the newest one.
    compacts = [n for n, i in enumerate(entries) if i.base_name.endswith(".compact")]
    added: dict[str, bool] = {}
    for entry in entries[compacts[-1] if compacts else 0:]:
        with fs.open_input_stream(entry.path) as f:
            lines = f.read().decode("utf-8").splitlines()
        for line in lines[1:]:  # the first line is the log's version
            record = json.loads(line)
            added[_path_in(fs, record["path"])] = record["action"] == "add"
    # One listing, not a request per file (on S3 each existence check is a HEAD).
    present = {i.path for i in fs.get_file_info(pafs.FileSelector(path, recursive=True))
               if i.type == pafs.FileType.File}
    return [p for p, kept in added.items() if kept and p in present]


def _path_in(fs: pafs.FileSystem, uri: str) -> str:
    """A path from the sink log (a URI, percent-encoded) as the file system names it."""
    if isinstance(fs, pafs.S3FileSystem):
        return unquote(re.sub(r"^s3a?://", "", uri))
    return unquote(urlparse(uri).path) if uri.startswith("file:") else uri


def read_dataset(location: str, settings: Settings | None = None) -> pd.DataFrame | None:
    """A dataset as its readers see it, with its partition columns; None when nothing is there.
    For a streaming sink, only the files its log committed (partition values as strings)."""
    fs, path = filesystem(location, settings)
    if not exists(fs, path):
        return None
    committed = committed_files(fs, path)
    if committed is None:
        # A batch output (replaced partition by partition): the folder is the dataset; pyarrow
        # skips files and folders whose names start with '_' or '.', as Spark does.
        parquet = [i for i in fs.get_file_info(pafs.FileSelector(path, recursive=True))
                   if i.type == pafs.FileType.File and i.base_name.endswith(".parquet")]
        return pd.read_parquet(path, filesystem=fs) if parquet else None
    if not committed:
        return None
    frames = []
    for f in sorted(committed):
        frame = pd.read_parquet(f, filesystem=fs)
        for part in f[len(path):].strip("/").split("/")[:-1]:
            if "=" in part:
                key, value = part.split("=", 1)
                frame[key] = value
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def write_parquet(frame: pd.DataFrame, location: str, name: str, settings: Settings | None = None) -> None:
    """`frame` as one Parquet file `name` in the folder at `location` (replaced whole: written
    under a temporary name first on local disk; an S3 upload is atomic by itself)."""
    fs, path = filesystem(location, settings)
    fs.create_dir(path, recursive=True)
    target = f"{path}/{name}"
    temporary = target if isinstance(fs, pafs.S3FileSystem) else f"{path}/.{name}.tmp"
    with fs.open_output_stream(temporary) as out:
        frame.to_parquet(out, index=False)
    if temporary != target:
        fs.move(temporary, target)
