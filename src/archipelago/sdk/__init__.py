"""The Python SDK: an API client with typed resource calls, and a Collection object."""

from ..rpc import ApiRequestError
from .client import ApiClient
from .collection import Collection

__all__ = ["ApiClient", "ApiRequestError", "Collection"]
