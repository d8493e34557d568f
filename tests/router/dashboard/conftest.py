"""The dashboard's tests start real services as the service tests do."""

from tests.router.service.conftest import service

__all__ = ["service"]
