"""moto's DynamoDB condition expressions parsed once per distinct request, not twice per call.

moto parses a PutItem's ConditionExpression twice on every call (once to check the names and
values it uses, once to evaluate it), with a tokenizer in pure Python: measured, 36 % of the
endpoint's CPU for the service's conditional PutItem. The service sends one condition text and
few distinct values (a version, the current second), so the parse of a (text, names, values)
triple is kept (bounded, least recently used dropped first) and handed out again.

Sharing a parse is safe because moto's parse result is immutable in use: its operator and
operand objects set their fields in __init__ only and evaluate an item without changing
themselves; a parse that raises is never kept. tests/contract/test_moto_conditions.py checks
each kept parse evaluates as a fresh one does.
"""

from __future__ import annotations

import collections
import json
import threading
from typing import Any

MAX_PARSES = 4096


class ParseMemo:
    """(condition text, names, values) → what moto's ConditionExpressionParser.parse gave."""

    def __init__(self, max_entries: int = MAX_PARSES) -> None:
        self._max = max_entries
        self._lock = threading.Lock()
        self._parses: collections.OrderedDict[str, tuple[Any, list[str], list[str]]] = (
            collections.OrderedDict()
        )
        self.hits = 0
        self.misses = 0

    def parse(self, parser: Any, moto_parse: Any) -> Any:
        try:
            key = json.dumps(
                [
                    parser.condition_expression,
                    parser.expression_attribute_names,
                    parser.expression_attribute_values,
                ],
                sort_keys=True,
            )
        except (TypeError, ValueError):  # not plain JSON: not worth keeping
            return moto_parse(parser)
        with self._lock:
            kept = self._parses.get(key)
            if kept is not None:
                self._parses.move_to_end(key)
                self.hits += 1
        if kept is None:
            result = moto_parse(parser)
            kept = (result, list(parser.expr_attr_names_found), list(parser.expr_attr_values_found))
            with self._lock:
                self.misses += 1
                self._parses[key] = kept
                while len(self._parses) > self._max:
                    self._parses.popitem(last=False)
            return result
        result, names, values = kept
        # What parse() records on the parser besides its result (the handler checks them).
        parser.expr_attr_names_found.extend(names)
        parser.expr_attr_values_found.extend(values)
        return result


def install(memo: ParseMemo | None = None) -> ParseMemo | None:
    """Routes moto's condition parsing through `memo` (a new one by default); None when this
    moto has no such parser."""
    try:
        from moto.dynamodb.comparisons import ConditionExpressionParser
    except ImportError:
        return None
    moto_parse = ConditionExpressionParser.parse
    existing = getattr(moto_parse, "_memo", None)
    if existing is not None:
        return existing  # type: ignore[no-any-return]
    memo = memo or ParseMemo()

    def parse(self: Any) -> Any:
        return memo.parse(self, moto_parse)

    parse._memo = memo  # type: ignore[attr-defined]
    parse.moto_parse = moto_parse  # type: ignore[attr-defined]
    setattr(ConditionExpressionParser, "parse", parse)  # noqa: B010 (mypy: no method assignment)
    return memo
