"""The Python SDK: an API client with typed resource calls, and a Collection object."""

from .client import ApiClient, ApiRequestError
from .collection import Collection

__all__ = ["ApiClient", "ApiRequestError", "Collection"]
