"""The REST API (FastAPI): every route calls the same JobService as the SDK and CLI."""

from jobgate.api.app import create_app

__all__ = ["create_app"]
