"""Runs the official Arvados Python SDK against our cluster (ARVADOS_API_HOST/TOKEN/HOST_INSECURE in
the environment): lists one directory of a collection and reads one small file of it, each from a
fresh CollectionReader, as a script would.

Usage: python _arvados_big_collection.py UUID DIRECTORY FILE  ->  JSON {"ls": s, "listed": n, "read": s, "md5": ...}
"""

import hashlib
import json
import sys
import time

import arvados
import arvados.collection

uuid, directory, path = sys.argv[1:4]
api = arvados.api("v1")

start = time.perf_counter()
reader = arvados.collection.CollectionReader(uuid, api_client=api)
listed = [(name, item.size()) for name, item in reader.find(directory).items()]
ls_seconds = time.perf_counter() - start
del reader

start = time.perf_counter()
reader = arvados.collection.CollectionReader(uuid, api_client=api)
with reader.open(path, "rb") as handle:
    data = handle.read()
read_seconds = time.perf_counter() - start
print(json.dumps({"ls": ls_seconds, "listed": len(listed), "read": read_seconds,
                  "md5": hashlib.md5(data).hexdigest(), "bytes": len(data)}))
