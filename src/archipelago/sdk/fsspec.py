"""An fsspec filesystem over collections (`archi://COLLECTION/path`, also `keep://`; given to the
filesystem itself, `keep:PDH/path` as CWL writes it),
so pandas, xarray, dask and pyarrow open files in any collection — in Keep, behind a gateway, or on
another cluster of the federation — with ranged reads that fetch only the blocks they touch.

    pandas.read_csv("archi://z1111-4zz18-…/cohort.csv")            # the cluster from ARCHI_API_* / the profile
    fsspec.open("keep://<pdh>/a.bin", host=..., token=..., insecure=True)
"""

from __future__ import annotations

from typing import Any

from fsspec.spec import AbstractBufferedFile, AbstractFileSystem

from .client import ApiClient
from .collection import Collection, read_segments


class ArchipelagoFileSystem(AbstractFileSystem):
    protocol = ("archi", "keep")
    root_marker = ""

    def __init__(self, host: str | None = None, token: str | None = None, insecure: bool = False,
                 client: ApiClient | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        if client is None:
            client = ApiClient(host, token, insecure) if host and token else ApiClient.from_env()
        self.client = client
        self._collections: dict[str, Collection] = {}

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        text = str(path)
        for prefix in ("archi://", "keep://", "keep:"):
            if text.startswith(prefix):
                text = text[len(prefix):]
                break
        return text.strip("/")

    def _split(self, path: str) -> tuple[Collection, str]:
        ident, _, inner = self._strip_protocol(path).partition("/")
        if ident not in self._collections:
            self._collections[ident] = Collection(self.client, ident)
        return self._collections[ident], inner.strip("/")

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        collection, inner = self._split(path)
        name = self._strip_protocol(path)
        for file, size in collection.files():
            if file == inner:
                return {"name": name, "size": size, "type": "file"}
        if not inner or inner in collection.directories():
            return {"name": name, "size": 0, "type": "directory"}
        raise FileNotFoundError(path)

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        collection, inner = self._split(path)
        base = self._strip_protocol(path).partition("/")[0]
        prefix = f"{inner}/" if inner else ""
        entries: dict[str, dict[str, Any]] = {}
        for file, size in collection.files():
            if file.startswith(prefix):
                head, _, rest = file[len(prefix):].partition("/")
                name = f"{base}/{prefix}{head}"
                entries[name] = {"name": name, "size": 0, "type": "directory"} if rest else \
                    {"name": name, "size": size, "type": "file"}
        for directory in collection.directories():
            if directory.startswith(prefix) and "/" not in directory[len(prefix):]:
                name = f"{base}/{directory}"
                entries.setdefault(name, {"name": name, "size": 0, "type": "directory"})
        if not entries and self.info(path)["type"] == "file":
            return [self.info(path)] if detail else [self._strip_protocol(path)]
        found = sorted(entries.values(), key=lambda e: e["name"])
        return found if detail else [e["name"] for e in found]

    def _open(self, path: str, mode: str = "rb", block_size: int | None = None, autocommit: bool = True,
              cache_options: dict[str, Any] | None = None, **kwargs: Any) -> KeepFile:
        if mode != "rb":
            raise NotImplementedError("collections are opened for reading here (write with the SDK's Collection)")
        collection, inner = self._split(path)
        return KeepFile(self, path, collection, inner, block_size=block_size, cache_options=cache_options)


class KeepFile(AbstractBufferedFile):
    """One file of a collection; a range read fetches only the blocks under it (through the keep
    client and its cache: a gateway, a keepstore, or another cluster's keepstore)."""

    def __init__(self, fs: ArchipelagoFileSystem, path: str, collection: Collection, inner: str, **kwargs: Any):
        self.segments = collection.segments(inner)
        self.keep = collection.client.keep()
        super().__init__(fs, path, mode="rb", size=sum(length for _, _, length in self.segments), **kwargs)

    def _fetch_range(self, start: int, end: int) -> bytes:
        return read_segments(self.keep, self.segments, start, end)
