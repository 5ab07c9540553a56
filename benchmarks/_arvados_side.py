"""Runs inside the Arvados SDK's own virtualenv: times Collection(text) and portable_data_hash().

Usage: python _arvados_side.py MANIFEST_FILE   ->  prints JSON {"parse": s, "pdh": s, "portable_data_hash": ...}
"""

import json
import sys
import tempfile
import time

import arvados.collection
import arvados.keep

with open(sys.argv[1]) as handle:
    text = handle.read()
with tempfile.TemporaryDirectory() as store:
    keep = arvados.keep.KeepClient(local_store=store)  # offline: no API server needed
    start = time.perf_counter()
    collection = arvados.collection.Collection(text, keep_client=keep, replication_desired=1)
    parsed = time.perf_counter()
    pdh = collection.portable_data_hash()
    done = time.perf_counter()
print(json.dumps({"parse": parsed - start, "pdh": done - parsed, "portable_data_hash": pdh}))
