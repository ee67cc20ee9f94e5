"""Existence checks and deletes of dataset paths through Hadoop's FileSystem API, so that the
same code serves local folders (plain paths, file://) and object stores (s3a://)."""

from __future__ import annotations

from pyspark.sql import SparkSession


def _fs_path(spark: SparkSession, uri: str):
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    return path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), path


def is_dir(spark: SparkSession, uri: str) -> bool:
    fs, path = _fs_path(spark, uri)
    return bool(fs.exists(path) and fs.getFileStatus(path).isDirectory())


def delete_tree(spark: SparkSession, uri: str) -> bool:
    """Delete `uri` and everything under it; False when there was nothing to delete."""
    fs, path = _fs_path(spark, uri)
    return bool(fs.exists(path) and fs.delete(path, True))


def data_files(spark: SparkSession, uri: str) -> list[tuple[str, int, int]]:
    """(URI, size, modification time) of every data file under `uri` (or `uri` itself when it is a
    file), skipping hidden and `_`-prefixed ones as Spark's readers do; [] when nothing is there."""
    fs, path = _fs_path(spark, uri)
    if not fs.exists(path):
        return []
    root = fs.makeQualified(path).toString().rstrip("/")
    found = []
    files = fs.listFiles(path, True)
    while files.hasNext():
        status = files.next()
        name = status.getPath().toString()
        relative = name[len(root):].lstrip("/").split("/")
        if not any(part.startswith((".", "_")) for part in relative):
            found.append((name, int(status.getLen()), int(status.getModificationTime())))
    return sorted(found)


def files_signature(spark: SparkSession, uri: str) -> tuple:
    """The data files under `uri` with their sizes and times: it changes when the data does;
    () when there is nothing at `uri`."""
    return tuple(data_files(spark, uri))


def names(spark: SparkSession, uri: str) -> list[str]:
    """The names of the entries directly in the folder `uri` ([] when it does not exist)."""
    fs, path = _fs_path(spark, uri)
    if not fs.exists(path):
        return []
    return [status.getPath().getName() for status in fs.listStatus(path)]


def read_text(spark: SparkSession, uri: str) -> str | None:
    fs, path = _fs_path(spark, uri)
    if not fs.exists(path):
        return None
    stream = fs.open(path)
    try:
        return spark.sparkContext._jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
    finally:
        stream.close()


def replace(spark: SparkSession, source: str, target: str) -> None:
    """Move the file `source` to `target`, replacing what is there. A reader sees the file whole
    or not at all (a rename on disk, a copy on an object store)."""
    fs, src = _fs_path(spark, source)
    dst = spark.sparkContext._jvm.org.apache.hadoop.fs.Path(target)
    fs.mkdirs(dst.getParent())
    if fs.exists(dst):
        fs.delete(dst, False)
    if not fs.rename(src, dst):
        raise OSError(f"could not move {source} to {target}")


def write_text(spark: SparkSession, uri: str, text: str) -> None:
    """Write `uri` whole: to a hidden sibling first, then renamed into place."""
    temporary = uri.rsplit("/", 1)
    temporary = f"{temporary[0]}/.{temporary[1]}.tmp"
    fs, path = _fs_path(spark, temporary)
    out = fs.create(path, True)
    try:
        out.write(bytearray(text.encode("utf-8")))
    finally:
        out.close()
    replace(spark, temporary, uri)
