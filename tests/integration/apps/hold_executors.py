"""Usage: hold_executors.py <release-file>

A tiny Spark application for the cluster test: runs one job over 4 partitions, then keeps its
executors until <release-file> exists (so the test can see where they run), and exits 0.
"""

import sys
import time
from pathlib import Path

from pyspark.sql import SparkSession

if __name__ == "__main__":
    release = Path(sys.argv[1])
    spark = SparkSession.builder.appName("hold-executors").getOrCreate()
    total = spark.sparkContext.parallelize(range(1000), 4).map(lambda x: x * 2).sum()
    print(f"sum={total}", flush=True)
    deadline = time.monotonic() + 120
    while not release.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    spark.stop()
