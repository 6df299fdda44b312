import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from uoom.orders.v1 import order_pb2 as _order_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateOrderRequest(_message.Message):
    __slots__ = ("request_id", "customer_id", "restaurant_id", "channel_id", "items", "delivery_location", "estimated_delivery_time")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    RESTAURANT_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_LOCATION_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_DELIVERY_TIME_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    customer_id: str
    restaurant_id: str
    channel_id: str
    items: _containers.RepeatedCompositeFieldContainer[_order_pb2.OrderItem]
    delivery_location: _order_pb2.DeliveryLocation
    estimated_delivery_time: _timestamp_pb2.Timestamp
    def __init__(self, request_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., restaurant_id: _Optional[str] = ..., channel_id: _Optional[str] = ..., items: _Optional[_Iterable[_Union[_order_pb2.OrderItem, _Mapping]]] = ..., delivery_location: _Optional[_Union[_order_pb2.DeliveryLocation, _Mapping]] = ..., estimated_delivery_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateOrderResponse(_message.Message):
    __slots__ = ("order",)
    ORDER_FIELD_NUMBER: _ClassVar[int]
    order: _order_pb2.Order
    def __init__(self, order: _Optional[_Union[_order_pb2.Order, _Mapping]] = ...) -> None: ...

class UpdateOrderStatusRequest(_message.Message):
    __slots__ = ("request_id", "order_id", "status", "expected_version", "estimated_delivery_time")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_DELIVERY_TIME_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    order_id: str
    status: _order_pb2.OrderStatus
    expected_version: int
    estimated_delivery_time: _timestamp_pb2.Timestamp
    def __init__(self, request_id: _Optional[str] = ..., order_id: _Optional[str] = ..., status: _Optional[_Union[_order_pb2.OrderStatus, str]] = ..., expected_version: _Optional[int] = ..., estimated_delivery_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class UpdateOrderStatusResponse(_message.Message):
    __slots__ = ("order",)
    ORDER_FIELD_NUMBER: _ClassVar[int]
    order: _order_pb2.Order
    def __init__(self, order: _Optional[_Union[_order_pb2.Order, _Mapping]] = ...) -> None: ...

class GetOrderStatusRequest(_message.Message):
    __slots__ = ("order_id", "min_version")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    MIN_VERSION_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    min_version: int
    def __init__(self, order_id: _Optional[str] = ..., min_version: _Optional[int] = ...) -> None: ...

class GetOrderStatusResponse(_message.Message):
    __slots__ = ("order",)
    ORDER_FIELD_NUMBER: _ClassVar[int]
    order: _order_pb2.OrderSummary
    def __init__(self, order: _Optional[_Union[_order_pb2.OrderSummary, _Mapping]] = ...) -> None: ...

class BatchGetOrderStatusRequest(_message.Message):
    __slots__ = ("order_ids",)
    ORDER_IDS_FIELD_NUMBER: _ClassVar[int]
    order_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, order_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class BatchGetOrderStatusResponse(_message.Message):
    __slots__ = ("orders", "missing_order_ids")
    ORDERS_FIELD_NUMBER: _ClassVar[int]
    MISSING_ORDER_IDS_FIELD_NUMBER: _ClassVar[int]
    orders: _containers.RepeatedCompositeFieldContainer[_order_pb2.OrderSummary]
    missing_order_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, orders: _Optional[_Iterable[_Union[_order_pb2.OrderSummary, _Mapping]]] = ..., missing_order_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class GetOrderDetailsRequest(_message.Message):
    __slots__ = ("order_id", "min_version")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    MIN_VERSION_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    min_version: int
    def __init__(self, order_id: _Optional[str] = ..., min_version: _Optional[int] = ...) -> None: ...

class GetOrderDetailsResponse(_message.Message):
    __slots__ = ("order",)
    ORDER_FIELD_NUMBER: _ClassVar[int]
    order: _order_pb2.Order
    def __init__(self, order: _Optional[_Union[_order_pb2.Order, _Mapping]] = ...) -> None: ...

class ListOrdersByCustomerRequest(_message.Message):
    __slots__ = ("customer_id", "page_size", "page_token", "status_filter")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATUS_FILTER_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    page_size: int
    page_token: str
    status_filter: _order_pb2.OrderStatus
    def __init__(self, customer_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., status_filter: _Optional[_Union[_order_pb2.OrderStatus, str]] = ...) -> None: ...

class ListOrdersByCustomerResponse(_message.Message):
    __slots__ = ("orders", "next_page_token")
    ORDERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    orders: _containers.RepeatedCompositeFieldContainer[_order_pb2.OrderSummary]
    next_page_token: str
    def __init__(self, orders: _Optional[_Iterable[_Union[_order_pb2.OrderSummary, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListOrdersByRestaurantRequest(_message.Message):
    __slots__ = ("restaurant_id", "page_size", "page_token", "status_filter")
    RESTAURANT_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATUS_FILTER_FIELD_NUMBER: _ClassVar[int]
    restaurant_id: str
    page_size: int
    page_token: str
    status_filter: _order_pb2.OrderStatus
    def __init__(self, restaurant_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., status_filter: _Optional[_Union[_order_pb2.OrderStatus, str]] = ...) -> None: ...

class ListOrdersByRestaurantResponse(_message.Message):
    __slots__ = ("orders", "next_page_token")
    ORDERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    orders: _containers.RepeatedCompositeFieldContainer[_order_pb2.OrderSummary]
    next_page_token: str
    def __init__(self, orders: _Optional[_Iterable[_Union[_order_pb2.OrderSummary, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
