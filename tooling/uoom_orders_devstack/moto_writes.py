"""Four costs of moto's DynamoDB puts that buy callers nothing, left out.

Measured (py-spy on the local endpoint, conditional PutItems of order items to both tables):

- **The item's size, checked once per attribute.** moto builds an item attribute by attribute
  into a dict that, on every insert, sums the sizes of everything already in it to check the
  400 KB limit: quadratic in the attributes, about two fifths of the handler's CPU for an
  order's details item. `item_init` keeps the running sum instead: the same check at the same
  attribute, so the same items refused with the same error.

- **The reply's item.** moto's PutItem handler encodes the whole item it stored to JSON and
  then drops it from the reply (which holds the old item for ReturnValues=ALL_OLD, else
  nothing): 15 % of the call. `put_item` below is moto 5.2's handler with that step left out;
  it answers the same.
- **The stream record's size.** The read model's tables have streams (NEW_AND_OLD_IMAGES, as
  the reference defines them), so moto records each write; to fill in the record's
  `SizeBytes` (moto's own "substantial overestimate") it encodes the whole record to a JSON
  string: another 15 %. `StreamRecord` below builds the same record and works that figure out
  the same way when the record is first read (GetRecords), not on every write. Nothing in the
  local stack reads the streams.

- **The table's key attributes, listed per attribute.** moto's check for empty sets asks, for
  each attribute of the item, whether it is a key of the table or an index, through a property
  that copies and walks the indexes every time: a twelfth of the call (py-spy `--gil`).
  `validate_put_has_empty_attrs` below lists them once per item.

Measured with one client, 16 conditional PutItems in flight, the handler's CPU per PutItem:
1.25 -> 1.06 ms with the reply and the stream record, 0.96 ms with the size sum too.
tests/contract/test_moto_writes.py checks replies, refusals, stored items and stream records
against moto's own, with all of `REPLACEMENTS` in place.
"""

from __future__ import annotations

from typing import Any

from moto.core.utils import utcnow
from moto.dynamodb.comparisons import create_condition_expression_parser
from moto.dynamodb.exceptions import ItemSizeTooLarge, MockValidationException
from moto.dynamodb.models import dynamo_type as moto_types
from moto.dynamodb.models import table as moto_table
from moto.dynamodb.models.utilities import bytesize, dynamo_json_dump
from moto.dynamodb.responses import (
    DynamoHandler,
    DynamoResult,
    include_consumed_capacity,
    validate_attributes_used,
    validate_put_has_empty_keys,
    validate_put_has_gsi_keys_set_to_none,
)
from moto.moto_api._internal import mock_random

ITEM_SIZE_LIMIT = 405000
"""moto's own limit (LimitedSizeDict): "between 409 and 410KB" measured, 400 KB documented."""


def item_init(self: Any, hash_key: Any, range_key: Any, attrs: dict[str, Any]) -> None:
    """moto 5.2's Item.__init__ with its size check kept as a running sum.

    moto checks, at each attribute, the size of those before it plus this one; sizes are never
    negative and the keys are distinct, so a running sum checked at each attribute refuses at
    the same one, after the same DynamoType conversions."""
    self.hash_key = hash_key
    self.range_key = range_key
    self.attrs = moto_types.LimitedSizeDict()
    size = 0
    for key, value in attrs.items():
        typed = moto_types.DynamoType(value)
        size += bytesize(key) + typed.size()
        if size > ITEM_SIZE_LIMIT:
            raise ItemSizeTooLarge
        dict.__setitem__(self.attrs, key, typed)


def validate_put_has_empty_attrs(field_updates: dict[str, Any], table: Any) -> None:
    """moto 5.2's check that no attribute outside the table's and its indexes' keys holds an
    empty number or string set, at any depth. moto lists those key attributes again for every
    attribute of the item (`Table.attribute_keys` is a property that copies and walks the
    indexes): a twelfth of a conditional PutItem. Here the list is made once per item."""

    def validate(attr: dict[str, Any]) -> None:
        for set_type, error in (("NS", "number"), ("SS", "string")):
            if set_type in attr and attr[set_type] == []:
                raise MockValidationException(
                    "1 validation error detected: One or more parameter values were invalid:"
                    f" An {error} set  may not be empty"
                )
        for value in attr.values():
            if isinstance(value, dict):
                validate(value)

    if table:
        keys = table.attribute_keys
        for name, value in field_updates.items():
            if name not in keys:
                validate(value)


@include_consumed_capacity()
def put_item(self: Any) -> Any:
    """moto 5.2's DynamoHandler.put_item, without encoding the stored item for the reply, and
    with its check for empty sets listing the table's key attributes once."""
    name = self.body["TableName"]
    item = self.body["Item"]
    return_values = self.body.get("ReturnValues", "NONE")
    return_values_on_condition_check_failure = self.body.get("ReturnValuesOnConditionCheckFailure")
    if return_values not in ("ALL_OLD", "NONE"):
        raise MockValidationException("Return values set to invalid value")

    table = self.dynamodb_backend.get_table(name)
    validate_put_has_empty_keys(item, table)
    validate_put_has_empty_attrs(item, table)
    validate_put_has_gsi_keys_set_to_none(item, table)

    overwrite = "Expected" not in self.body
    expected = None if overwrite else self.body["Expected"]

    existing_attributes: dict[str, Any] = {}
    if return_values == "ALL_OLD":
        existing_item = self.dynamodb_backend.get_item(name, item)
        if existing_item:
            existing_attributes = existing_item.to_json()["Attributes"]

    condition_expression = self.body.get("ConditionExpression")
    expression_attribute_names = self.body.get("ExpressionAttributeNames", {})
    expression_attribute_values = self._get_expr_attr_values()
    parser = create_condition_expression_parser(
        condition_expression, expression_attribute_names, expression_attribute_values
    )
    parser.parse()
    validate_attributes_used(expression_attribute_names, parser.expr_attr_names_found)
    if condition_expression:
        overwrite = False

    self.dynamodb_backend.put_item(
        name,
        item,
        expected,
        condition_expression,
        expression_attribute_names,
        expression_attribute_values,
        overwrite,
        return_values_on_condition_check_failure,
    )
    # moto's: item_dict = result.to_json() ({"Attributes": the new item}), then the old item in
    # its place for ALL_OLD, else the key popped.
    reply: dict[str, Any] = {}
    if return_values == "ALL_OLD" and existing_attributes:
        reply["Attributes"] = existing_attributes
    return DynamoResult(reply)


class StreamRecord(moto_table.StreamRecord):
    """moto 5.2's stream record, its SizeBytes worked out when it is first read."""

    def __init__(
        self,
        table: Any,
        stream_type: str,
        event_name: str,
        old: Any | None,
        new: Any | None,
        seq: int,
    ) -> None:
        # moto's __init__ up to the size, which it measures here.
        old_a = old.to_json()["Attributes"] if old is not None else {}
        new_a = new.to_json()["Attributes"] if new is not None else {}
        rec = old if old is not None else new
        keys = {table.hash_key_attr: rec.hash_key.to_json()}  # type: ignore[union-attr]
        if table.range_key_attr is not None and rec is not None:
            keys[table.range_key_attr] = rec.range_key.to_json()
        self.record: dict[str, Any] = {
            "eventID": mock_random.uuid4().hex,
            "eventName": event_name,
            "eventSource": "aws:dynamodb",
            "eventVersion": "1.0",
            "awsRegion": "us-east-1",
            "dynamodb": {
                "StreamViewType": stream_type,
                "ApproximateCreationDateTime": utcnow(),
                "SequenceNumber": str(seq),
                "SizeBytes": 1,
                "Keys": keys,
            },
        }
        if stream_type in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES") and new is not None:
            self.record["dynamodb"]["NewImage"] = new_a
        if stream_type in ("OLD_IMAGE", "NEW_AND_OLD_IMAGES") and old is not None:
            self.record["dynamodb"]["OldImage"] = old_a
        self._sized = False

    def to_json(self) -> dict[str, Any]:
        if not self._sized:
            # As moto's __init__ measures it: the record's "dynamodb" part, SizeBytes still 1.
            self.record["dynamodb"]["SizeBytes"] = len(dynamo_json_dump(self.record["dynamodb"]))
            self._sized = True
        return self.record


REPLACEMENTS: tuple[tuple[Any, str, Any], ...] = (
    (moto_types.Item, "__init__", item_init),
    (DynamoHandler, "put_item", put_item),
    (moto_table, "StreamRecord", StreamRecord),
)
"""(owner, attribute, what stands in for it): what `install` sets, and the contract test too."""


def install() -> bool:
    """Puts all three in place of moto's; False (nothing changed) when this moto lacks one."""
    if not hasattr(moto_types, "LimitedSizeDict") or not all(
        hasattr(owner, name) for owner, name, _ in REPLACEMENTS
    ):
        return False
    if getattr(DynamoHandler.put_item, "moto_put_item", None) is not None:
        return True  # installed already
    put_item.moto_put_item = DynamoHandler.put_item  # type: ignore[attr-defined]
    for owner, name, replacement in REPLACEMENTS:
        setattr(owner, name, replacement)
    return True
