"""The one error hierarchy of stylekit.

Every error a user can cause or meet is a :class:`StylekitError`. Each class carries the HTTP
status that the TorchServe handler and the web app answer with, so the mapping from error to
status lives here once instead of in every server.
"""

from __future__ import annotations


class StylekitError(Exception):
    """Base class: one clear sentence for a person, and an HTTP status for servers."""

    http_status: int = 500
    code: str = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, object]:
        """JSON body used by the handler and the web API for this error."""
        return {"error": self.code, "message": self.message, "status": self.http_status}


class InvalidImageError(StylekitError, ValueError):
    """The input is not a decodable image (corrupt, truncated, empty, unknown format)."""

    http_status = 400
    code = "invalid_image"


class InvalidVideoError(InvalidImageError):
    """The input is not a usable video (corrupt, truncated, no video stream, no frames).

    A kind of :class:`InvalidImageError`, so whoever answers bad pictures with 400 answers bad
    videos the same way; frames over the image limits raise :class:`ImageTooLargeError`.
    """

    code = "invalid_video"


class InvalidMaskError(InvalidImageError):
    """A ``mask=`` that cannot be used: unreadable, empty, or not the photo's aspect ratio.

    A kind of :class:`InvalidImageError`, answered with 400 like a bad photo.
    """

    code = "invalid_mask"


class ImageTooLargeError(InvalidImageError):
    """The image exceeds a configured limit (bytes, pixels, side) or is a decompression bomb."""

    http_status = 413
    code = "image_too_large"


class UnsupportedMediaTypeError(InvalidImageError):
    """An upload declares a content type that is not an image."""

    http_status = 415
    code = "unsupported_media_type"


class BadOptionError(StylekitError, ValueError):
    """An option has a wrong value or type (strength out of range, bad format, ...)."""

    http_status = 400
    code = "bad_option"


class UnknownStyleError(StylekitError, LookupError):
    """No style of that name is registered."""

    http_status = 404
    code = "unknown_style"


class UploadTimeoutError(StylekitError):
    """An upload did not arrive within the server's time for it."""

    http_status = 408
    code = "upload_timeout"


class BusyError(StylekitError):
    """A server is doing as much as it admits at once; try again shortly (``Retry-After``)."""

    http_status = 503
    code = "busy"


class StylePackageError(StylekitError):
    """A style package is missing, corrupt, fails its checksum or has a bad manifest."""

    http_status = 500
    code = "style_package_error"


class DuplicateStyleError(StylekitError):
    """Two sources register the same style name."""

    http_status = 500
    code = "duplicate_style"


class PluginError(StylekitError):
    """A plugin (entry point in ``stylekit.styles``) failed to load."""

    http_status = 500
    code = "plugin_error"


class DeviceError(StylekitError):
    """The requested device is not available (``cuda`` without a GPU, ...)."""

    http_status = 500
    code = "device_unavailable"


class ServerError(StylekitError):
    """A stylekit/TorchServe server answered with an error; carries its status and message."""

    code = "server_error"

    def __init__(self, message: str, status: int = 500) -> None:
        super().__init__(message)
        self.http_status = status


class ServerUnavailableError(ServerError):
    """The server cannot be reached or keeps answering 503 after the retries."""

    code = "server_unavailable"

    def __init__(self, message: str, status: int = 503) -> None:
        super().__init__(message, status)


class AuthenticationError(ServerError):
    """The server refused the token (TorchServe answers 400/401 InvalidKeyException)."""

    code = "authentication_failed"

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message, status)


class TrainingError(StylekitError):
    """Training cannot start or cannot go on (no data, NaN loss, ...)."""

    code = "training_error"


class WeightsNotFoundError(TrainingError):
    """Pretrained loss-network weights are neither cached nor given as a file."""

    code = "weights_not_found"


__all__ = [
    "AuthenticationError",
    "BadOptionError",
    "BusyError",
    "DeviceError",
    "DuplicateStyleError",
    "ImageTooLargeError",
    "InvalidImageError",
    "InvalidMaskError",
    "InvalidVideoError",
    "PluginError",
    "ServerError",
    "ServerUnavailableError",
    "StylePackageError",
    "StylekitError",
    "TrainingError",
    "UnknownStyleError",
    "UnsupportedMediaTypeError",
    "UploadTimeoutError",
    "WeightsNotFoundError",
]
