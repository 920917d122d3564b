"""Upload bodies' SHA-256 computed off the event loop, for a signature that covers them.

Bodies go as ``UNSIGNED-PAYLOAD`` unless ``--sign-payload`` (or ``--upload-checksums
sha256``) asks that the signature cover them (``x-amz-content-sha256``: their SHA-256).
botocore would hash each body while signing, on the event loop: about 15 ms for a 16 MiB
part here, 1 s per GiB uploaded during which no other part moves and no client byte is read.
``sha256_of`` computes it before the call, on a thread as every upload checksum is
(``checksums.checksum_async``), carried by the body; the client's
``before-parameter-build`` handler puts it in the request's context and ``choose-signer``
picks ``PrehashedS3SigV4Auth``, botocore's own S3 signer but for taking that value instead
of hashing again.
"""

from __future__ import annotations

import base64
from typing import Any

import botocore.auth
from botocore.handlers import set_operation_specific_signer

from gateway.storage.checksums import PARAMS, THREAD_AT, checksum_async

SIGNER = "bucketdav-s3v4"  # botocore's s3v4 but for a payload hash given in the context
CONTEXT_KEY = "bucketdav_payload_sha256"
OPERATIONS = ("PutObject", "UploadPart")


class PrehashedS3SigV4Auth(botocore.auth.S3SigV4Auth):  # type: ignore[misc]
    def payload(self, request: Any) -> str:
        digest = request.context.get(CONTEXT_KEY)
        if digest is not None and self._should_sha256_sign_payload(request):
            return str(digest)
        return str(super().payload(request))


botocore.auth.AUTH_TYPE_MAPS.setdefault(SIGNER, PrehashedS3SigV4Auth)


# The threshold ``checksum_async`` hashes on a thread from: below it a thread costs more
# than the hash it moves.
MIN_BYTES = THREAD_AT


async def sha256_of(data: bytes, sent: dict[str, str] | None = None) -> str | None:
    """``data``'s SHA-256 (hex) for the signature; None for a small body (botocore hashes
    it). A SHA-256 checksum already in ``sent`` (``--upload-checksums sha256``) is the
    same digest: it is reused, not computed again."""
    digest = (sent or {}).get(PARAMS["sha256"][0])  # base64, as the checksum header has it
    if not digest:
        if len(data) < MIN_BYTES:
            return None
        digest = await checksum_async("sha256", data)
    return base64.b64decode(digest).hex()


def _carry(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    body = params.get("Body")
    digest = getattr(body, "sha256", None)
    if digest is not None:
        context[CONTEXT_KEY] = digest


def _choose(signature_version: Any, context: dict[str, Any], signing_name: str,
            **_: Any) -> Any:
    """botocore's own choice (this handler, the operation's, comes before its), but for
    the hash given: s3v4 with it is ``SIGNER``."""
    chosen = set_operation_specific_signer(context=context, signing_name=signing_name)
    if (chosen or signature_version) == "s3v4" and CONTEXT_KEY in context:
        return SIGNER
    return chosen


def register(client: Any) -> None:
    """Sign ``client``'s uploads with the hashes ``sha256_of`` made (a client whose bodies are
    signed: ``Preset.sign_payload``)."""
    events = client.meta.events
    for operation in OPERATIONS:
        events.register(f"before-parameter-build.s3.{operation}", _carry)
        events.register(f"choose-signer.s3.{operation}", _choose)
