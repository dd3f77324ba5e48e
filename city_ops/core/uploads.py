"""Upload validation shared by every endpoint that takes files: size limit, real image check (decoded, not
trusted by extension or content type), decompression-bomb guard. Nothing is stored before this passes."""
from __future__ import annotations

import hashlib
import io

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from PIL import Image, UnidentifiedImageError

from vision.heif import heif_brand, heif_register

heif_register()  # HEIC (iPhones) readable by Image.open in every process that validates uploads

# 12 MP phones and 50 MP flagships fit; a 30,000 x 30,000 "bomb" does not.
MAX_PIXELS = 80_000_000
ALLOWED_FORMATS = {"JPEG", "PNG", "HEIF", "WEBP"}


class UploadError(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def image_upload_validate(*, file: UploadedFile | None, max_bytes: int | None = None) -> UploadedFile:
    """Check an uploaded image; returns it rewound, with `.sha256` and `.image_size` set."""
    if file is None:
        raise UploadError("no file was sent (form field 'image')")
    max_bytes = max_bytes or settings.CITY_OPS_MAX_UPLOAD_BYTES
    if file.size > max_bytes:
        raise UploadError(f"the file is {file.size} bytes; the limit is {max_bytes}", status=413)
    if file.size == 0:
        raise UploadError("the file is empty")
    data = file.read()
    file.seek(0)
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.format not in ALLOWED_FORMATS:
                raise UploadError(f"{im.format} images are not accepted; send JPEG, PNG or HEIC", status=415)
            if im.width * im.height > MAX_PIXELS:
                raise UploadError(f"the image is {im.width}x{im.height} pixels; the limit is {MAX_PIXELS} pixels")
            im.load()  # decodes every byte: a truncated file fails here, not later in a worker
            size = im.size
    except UploadError:
        raise
    except Image.DecompressionBombError as exc:
        raise UploadError(f"refused as a decompression bomb: {exc}") from None
    except UnidentifiedImageError:
        if heif_brand(data):  # libheif refuses a HEIC cut short already when opening it
            raise UploadError("the HEIC image is damaged or truncated") from None
        raise UploadError("the file is not an image that can be read", status=415) from None
    except (OSError, SyntaxError, ValueError, RuntimeError) as exc:  # RuntimeError: libheif decoding errors
        raise UploadError(f"the image is damaged or truncated: {exc}") from None
    file.sha256 = hashlib.sha256(data).hexdigest()
    file.image_size = size
    return file
