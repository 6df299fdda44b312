import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from uoom.orders.v1 import order_pb2 as _order_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OrderEventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ORDER_EVENT_TYPE_UNSPECIFIED: _ClassVar[OrderEventType]
    ORDER_EVENT_TYPE_CREATED: _ClassVar[OrderEventType]
    ORDER_EVENT_TYPE_STATUS_CHANGED: _ClassVar[OrderEventType]
ORDER_EVENT_TYPE_UNSPECIFIED: OrderEventType
ORDER_EVENT_TYPE_CREATED: OrderEventType
ORDER_EVENT_TYPE_STATUS_CHANGED: OrderEventType

class OrderEvent(_message.Message):
    __slots__ = ("event_id", "event_type", "occurred_at", "version", "order", "previous_status")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_STATUS_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    event_type: OrderEventType
    occurred_at: _timestamp_pb2.Timestamp
    version: int
    order: _order_pb2.Order
    previous_status: _order_pb2.OrderStatus
    def __init__(self, event_id: _Optional[str] = ..., event_type: _Optional[_Union[OrderEventType, str]] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., version: _Optional[int] = ..., order: _Optional[_Union[_order_pb2.Order, _Mapping]] = ..., previous_status: _Optional[_Union[_order_pb2.OrderStatus, str]] = ...) -> None: ...
