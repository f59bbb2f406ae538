"""schemathesis hooks: send generated binary bodies for DICOM media types as raw bytes.

schemathesis has no serializer for `application/dicom` or `multipart/related`; with this
it fuzzes STOW-RS with arbitrary bytes, which petal must refuse without a 5xx.
"""

import schemathesis


@schemathesis.serializer("application/dicom", "multipart/related")
def raw_bytes(ctx, value):
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8", "surrogatepass")
