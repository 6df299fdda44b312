"""DAX's compiled expressions back into DynamoDB expression text.

The client parses every expression itself and sends a CBOR s-expression: `[1, tree, values]`
(`[1, paths]` for a projection), with `#name` placeholders already replaced by the names and
`:value` placeholders by `[17, n]`, an index into that expression's own value array. To
forward a request, each tree is written out again as text with fresh placeholders: `#n0…`
for every name, `:<kind>0…` for the values of each expression.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cbor2 import CBORTag

from uoom_orders_dax.errors import DaxError
from uoom_orders_dax.framing import loads
from uoom_orders_dax.items import Path
from uoom_orders_dax.values import TAG_PATH_ORDINAL, AttributeValue, to_attribute_value

_ENCODING_FORMAT = 1
_COMPARATORS = {0: "=", 1: "<>", 2: "<", 3: ">=", 4: ">", 5: "<="}
_AND, _OR, _NOT, _BETWEEN, _IN = 6, 7, 8, 9, 10
_FUNCTIONS = {
    11: "attribute_exists",
    12: "attribute_not_exists",
    13: "attribute_type",
    14: "begins_with",
    15: "contains",
    16: "size",
    23: "if_not_exists",
    24: "list_append",
}
_VARIABLE, _DOCUMENT_PATH = 17, 18
_ACTIONS = {19: "SET", 20: "ADD", 21: "DELETE", 22: "REMOVE"}
_ARITHMETIC = {25: "+", 26: "-"}


class ExpressionWriter:
    """Writes one request's expressions as text, collecting the names and values they use."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}  # placeholder → attribute name
        self._placeholders: dict[str, str] = {}  # attribute name → placeholder
        self.values: dict[str, AttributeValue] = {}
        self._prefix = ""
        self._variables: list[Any] = []

    def request_fields(self) -> dict[str, Any]:
        """ExpressionAttributeNames/Values for the DynamoDB request, when any were used."""
        fields: dict[str, Any] = {}
        if self.names:
            fields["ExpressionAttributeNames"] = dict(self.names)
        if self.values:
            fields["ExpressionAttributeValues"] = dict(self.values)
        return fields

    def condition(self, raw: bytes, prefix: str) -> str:
        """A key condition, filter or condition expression."""
        tree = self._open(raw, prefix, with_values=True)
        return self._condition(tree)

    def update(self, raw: bytes) -> str:
        tree = self._open(raw, "u", with_values=True)
        if not isinstance(tree, list):
            raise DaxError.validation("an update expression is a list of actions")
        clauses: dict[str, list[str]] = {}
        for action in tree:
            kind = _ACTIONS.get(action[0]) if isinstance(action, list) and action else None
            if kind is None:
                raise DaxError.validation(f"unknown update action {action!r}")
            path = self._path(action[1])
            if kind == "SET":
                text = f"{path} = {self._operand(action[2])}"
            elif kind == "REMOVE":
                text = path
            else:
                text = f"{path} {self._operand(action[2])}"
            clauses.setdefault(kind, []).append(text)
        return " ".join(f"{kind} {', '.join(texts)}" for kind, texts in clauses.items())

    def projection(self, raw: bytes) -> tuple[str, list[Path]]:
        """The projection text and its paths (a projected reply is keyed by path ordinal)."""
        tree = self._open(raw, "p", with_values=False)
        if not isinstance(tree, list) or not tree:
            raise DaxError.validation("a projection is a list of document paths")
        paths = [self._path_elements(node) for node in tree]
        return ", ".join(self._path(node) for node in tree), paths

    def _open(self, raw: bytes, prefix: str, *, with_values: bool) -> Any:
        decoded = loads(raw)
        size = 3 if with_values else 2
        if not isinstance(decoded, list) or len(decoded) != size or decoded[0] != _ENCODING_FORMAT:
            raise DaxError.validation("unrecognised expression encoding")
        self._prefix = prefix
        self._variables = list(decoded[2]) if with_values else []
        return decoded[1]

    def _condition(self, node: Any) -> str:
        code, args = _split(node)
        if code in _COMPARATORS:
            left, right = (self._operand(arg) for arg in args)
            return f"{left} {_COMPARATORS[code]} {right}"
        if code in (_AND, _OR):
            word = "AND" if code == _AND else "OR"
            return f" {word} ".join(self._nested(arg, code) for arg in args)
        if code == _NOT:
            return f"NOT {self._nested(args[0], code)}"
        if code == _BETWEEN:
            subject, low, high = (self._operand(arg) for arg in args)
            return f"{subject} BETWEEN {low} AND {high}"
        if code == _IN:
            subject, options = args
            return f"{self._operand(subject)} IN ({', '.join(self._operand(o) for o in options)})"
        if code in _FUNCTIONS:
            return self._function(code, args)
        raise DaxError.validation(f"unknown condition node {code}")

    def _nested(self, node: Any, parent: int) -> str:
        """A logical operand; an AND or OR under a different operator keeps parentheses
        (correct whatever the precedence; a chain of one operator needs none)."""
        text = self._condition(node)
        code = _split(node)[0]
        return f"({text})" if code in (_AND, _OR) and code != parent else text

    def _operand(self, node: Any) -> str:
        code, args = _split(node)
        if code == _VARIABLE:
            return self._value(args[0])
        if code == _DOCUMENT_PATH:
            return self._path(node)
        if code in _ARITHMETIC:
            left, right = (self._operand(arg) for arg in args)
            return f"{left} {_ARITHMETIC[code]} {right}"
        if code in _FUNCTIONS:
            return self._function(code, args)
        raise DaxError.validation(f"unknown operand node {code}")

    def _function(self, code: int, args: Sequence[Any]) -> str:
        return f"{_FUNCTIONS[code]}({', '.join(self._operand(arg) for arg in args)})"

    def _value(self, index: Any) -> str:
        if not isinstance(index, int) or not 0 <= index < len(self._variables):
            raise DaxError.validation(f"expression value {index!r} is not defined")
        placeholder = f":{self._prefix}{index}"
        self.values[placeholder] = to_attribute_value(self._variables[index])
        return placeholder

    def _path(self, node: Any) -> str:
        text = ""
        for element in self._path_elements(node):
            if isinstance(element, int):
                text += f"[{element}]"
            else:
                text += ("." if text else "") + self._name(element)
        return text

    def _path_elements(self, node: Any) -> Path:
        code, args = _split(node)
        if code != _DOCUMENT_PATH or not args or not isinstance(args[0], str):
            raise DaxError.validation(f"not a document path: {node!r}")
        elements: list[str | int] = []
        for arg in args:
            if isinstance(arg, CBORTag) and arg.tag == TAG_PATH_ORDINAL:
                elements.append(int(arg.value))
            elif isinstance(arg, str):
                elements.append(arg)
            else:
                raise DaxError.validation(f"unknown document path element {arg!r}")
        return tuple(elements)

    def _name(self, name: str) -> str:
        placeholder = self._placeholders.get(name)
        if placeholder is None:
            placeholder = f"#n{len(self._placeholders)}"
            self._placeholders[name] = placeholder
            self.names[placeholder] = name
        return placeholder


def _split(node: Any) -> tuple[int, list[Any]]:
    if not isinstance(node, list) or not node or not isinstance(node[0], int):
        raise DaxError.validation(f"malformed expression node {node!r}")
    return node[0], node[1:]
