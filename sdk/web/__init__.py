"""The web demo: a FastAPI app (``create_app``) and the page it serves (``stylekit web``)."""

from sdk.web.app import WebSettings, create_app

__all__ = ["WebSettings", "create_app"]
