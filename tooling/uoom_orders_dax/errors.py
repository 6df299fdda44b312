"""DAX's error replies: a code path, a message and DynamoDB's own code and HTTP status.

On the wire an error is three CBOR items where a success has an empty array: the array of
codes, the message, and `[request id, DynamoDB error code, HTTP status]`. The client maps code
paths that start with 4 to DynamoDB's exception names and retries every error whose path does
not start with 3, so errors that a retry cannot fix (an unsupported method, an unknown
DynamoDB error) start with 3.
"""

from __future__ import annotations

import uuid

import cbor2

# Code paths the client maps to DynamoDB's exception names (its DaxError.ERROR_MAP).
_DYNAMODB_PATHS = {
    "ProvisionedThroughputExceededException": (4, 37, 38, 39, 40),
    "ResourceNotFoundException": (4, 37, 38, 39, 41),
    "ConditionalCheckFailedException": (4, 37, 38, 39, 43),
    "ResourceInUseException": (4, 37, 38, 39, 45),
    "ValidationException": (4, 37, 38, 39, 46),
    "InternalServerError": (4, 37, 38, 39, 47),
    "ItemCollectionSizeLimitExceededException": (4, 37, 38, 39, 48),
    "LimitExceededException": (4, 37, 38, 39, 49),
    "ThrottlingException": (4, 37, 38, 39, 50),
    "TransactionCanceledException": (4, 37, 38, 39, 58),
    "RequestLimitExceeded": (4, 37, 38, 39, 61),
    "AccessDeniedException": (4, 37, 38, 42),
}
_NOT_RETRYABLE = (3,)
# [4, 23, 31, ...] is what the client treats as an authentication failure.
_AUTHENTICATION = (4, 23, 31, 33)


class DaxError(Exception):
    """An error the endpoint answers in DAX's shape; the connection stays usable."""

    def __init__(
        self, codes: tuple[int, ...], message: str, *, dynamodb_code: str, http_status: int
    ) -> None:
        super().__init__(message)
        self.codes = codes
        self.message = message
        self.dynamodb_code = dynamodb_code
        self.http_status = http_status

    def encode(self) -> bytes:
        """The error reply's bytes."""
        details = [str(uuid.uuid4()), self.dynamodb_code, self.http_status]
        return cbor2.dumps(list(self.codes)) + cbor2.dumps(self.message) + cbor2.dumps(details)

    @classmethod
    def from_dynamodb(cls, code: str, message: str, http_status: int) -> DaxError:
        """DynamoDB's error as DAX passes it on."""
        path = _DYNAMODB_PATHS.get(code, _NOT_RETRYABLE)
        return cls(path, message or code, dynamodb_code=code, http_status=http_status)

    @classmethod
    def validation(cls, message: str) -> DaxError:
        return cls.from_dynamodb("ValidationException", message, 400)

    @classmethod
    def unsupported(cls, what: str) -> DaxError:
        return cls(
            _NOT_RETRYABLE,
            f"{what} is not supported by this DAX endpoint",
            dynamodb_code="UnknownOperationException",
            http_status=400,
        )

    @classmethod
    def unauthenticated(cls) -> DaxError:
        return cls(
            _AUTHENTICATION,
            "Request must be authorized: authorizeConnection with a signature comes first",
            dynamodb_code="MissingAuthenticationTokenException",
            http_status=403,
        )

    @classmethod
    def internal(cls, message: str) -> DaxError:
        return cls.from_dynamodb("InternalServerError", message, 500)
