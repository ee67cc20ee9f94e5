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


def files_signature(spark: SparkSession, uri: str) -> tuple:
    """(path, size, modification time) of every data file under `uri` (or of `uri` itself when it
    is a file), skipping hidden and `_`-prefixed ones: it changes when the data does; () when
    there is nothing at `uri`."""
    fs, path = _fs_path(spark, uri)
    if not fs.exists(path):
        return ()
    root = fs.makeQualified(path).toString().rstrip("/")
    found = []
    files = fs.listFiles(path, True)
    while files.hasNext():
        status = files.next()
        name = status.getPath().toString()
        relative = name[len(root):].lstrip("/").split("/")
        if not any(part.startswith((".", "_")) for part in relative):
            found.append((name, int(status.getLen()), int(status.getModificationTime())))
    return tuple(sorted(found))
