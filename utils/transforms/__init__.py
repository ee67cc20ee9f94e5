"""Pure DataFrame -> DataFrame transformations of the jobs, one module per subject.

* `records`: the layout of each topic's records and of the quarantine (CONTRACT §1–2), the one
  declaration that validation, extraction, the quarantine and the benchmarks' `from_json` read;
* `validation`: JSON records checked field by field with a readable reason, and the quarantine;
* `events`: typed app events, clicks and external records from validated rows, and windows;
* `sessions`: clickstream sessions;
* `cdc`: Debezium change events;
* `enrichment`: the join with the user master and the latest segments;
* `generic`: helpers that work on any DataFrame.

Nothing here reads or writes: each function takes DataFrames and plain values and returns a
DataFrame, so that a test can call it on a five-row literal DataFrame. Each works the same on batch
and streaming DataFrames unless its docstring says otherwise. No Python UDFs: JSON is validated
with Spark 4's VARIANT functions, which run in the JVM. `utils.transformations` gathers them all
in the `DataTransformations` namespace.
"""
