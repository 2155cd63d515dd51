"""``from src.data.provider import UnifiedDataProvider`` (the deployment guide's check)."""

from candlewise.app.provider import UnifiedDataProvider

__all__ = ["UnifiedDataProvider"]
