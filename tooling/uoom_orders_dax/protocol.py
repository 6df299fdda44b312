"""The numbers of DAX's wire protocol, as amazon-dax-client 2.x writes and reads them.

Learnt from the client's own source (Apache-2.0): method ids from its generated stubs, request
and response parameter ids from its constants. Nothing else describes the protocol.
"""

from __future__ import annotations

from enum import IntEnum

# Raw bytes that open every connection, before any CBOR.
MAGIC = b"gJ7yne5G"
# Every request starts with this CBOR int, then the method id.
REQUEST_SERVICE = 1
# A reply starts with an empty CBOR array on success; anything else is an error.
SUCCESS = b"\x80"
# Attribute-list id 1 is the empty list on both sides; neither side ever asks for it.
EMPTY_ATTRIBUTE_LIST_ID = 1


class Method(IntEnum):
    """Method ids (the client's `DaxMethodIds`)."""

    AUTHORIZE_CONNECTION = 1489122155
    ENDPOINTS = 455855874
    DEFINE_KEY_SCHEMA = -742646399
    DEFINE_ATTRIBUTE_LIST_ID = -1230579644
    DEFINE_ATTRIBUTE_LIST = 670678385
    GET_ITEM = 263244906
    PUT_ITEM = -2106490455
    DELETE_ITEM = 1013539361
    UPDATE_ITEM = 1425579023
    QUERY = -931250863
    SCAN = -1875390620
    BATCH_GET_ITEM = -697851100
    BATCH_WRITE_ITEM = 116217951
    TRANSACT_GET_ITEMS = 1866287579
    TRANSACT_WRITE_ITEMS = -1160037738


# How many CBOR items follow the method id (the trailing kwargs map, or null, included). The
# stream has no other framing: a method whose count is unknown cannot be skipped, so its
# connection is answered with an error and closed.
ARGUMENT_COUNTS: dict[int, int] = {
    Method.AUTHORIZE_CONNECTION: 5,
    Method.ENDPOINTS: 0,
    Method.DEFINE_KEY_SCHEMA: 1,
    Method.DEFINE_ATTRIBUTE_LIST_ID: 1,
    Method.DEFINE_ATTRIBUTE_LIST: 1,
    Method.GET_ITEM: 3,
    Method.PUT_ITEM: 4,
    Method.DELETE_ITEM: 3,
    Method.UPDATE_ITEM: 3,
    Method.QUERY: 3,
    Method.SCAN: 2,
    Method.BATCH_GET_ITEM: 2,
    Method.BATCH_WRITE_ITEM: 2,
    Method.TRANSACT_GET_ITEMS: 4,
    Method.TRANSACT_WRITE_ITEMS: 9,
}


class RequestParam(IntEnum):
    """Keys of a request's kwargs map (the client's `DaxDataRequestParam`)."""

    PROJECTION_EXPRESSION = 0
    EXPRESSION_ATTRIBUTE_NAMES = 1
    CONSISTENT_READ = 2
    RETURN_CONSUMED_CAPACITY = 3
    CONDITION_EXPRESSION = 4
    EXPRESSION_ATTRIBUTE_VALUES = 5
    RETURN_ITEM_COLLECTION_METRICS = 6
    RETURN_VALUES = 7
    UPDATE_EXPRESSION = 8
    EXCLUSIVE_START_KEY = 9
    FILTER_EXPRESSION = 10
    INDEX_NAME = 11
    KEY_CONDITION_EXPRESSION = 12
    LIMIT = 13
    SCAN_INDEX_FORWARD = 14
    SELECT = 15


class ResponseParam(IntEnum):
    """Keys of a single-item or query reply map (the client's `DaxResponseParam`)."""

    ITEM = 0
    CONSUMED_CAPACITY = 1
    ATTRIBUTES = 2
    ITEMS = 7
    COUNT = 8
    LAST_EVALUATED_KEY = 9
    SCANNED_COUNT = 10


SELECT_NAMES = {
    1: "ALL_ATTRIBUTES",
    2: "ALL_PROJECTED_ATTRIBUTES",
    3: "COUNT",
    4: "SPECIFIC_ATTRIBUTES",
}
RETURN_VALUES_NAMES = {1: "NONE", 2: "ALL_OLD", 3: "UPDATED_OLD", 4: "ALL_NEW", 5: "UPDATED_NEW"}


class EndpointField(IntEnum):
    """Keys of one node's map in an `endpoints` reply (the client's `ENDPOINT_FIELDS` order)."""

    NODE = 0
    HOSTNAME = 1
    ADDRESS = 2
    PORT = 3
    ROLE = 4
    AVAILABILITY_ZONE = 5
    LEADER_SESSION_ID = 6


class Role(IntEnum):
    LEADER = 1
    REPLICA = 2
