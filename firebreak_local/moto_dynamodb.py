"""moto's DynamoDB at the cost of its answers: its per-call overheads (copies, parses, walks, sizes) cut where they
are paid, every answer as moto 5.2.5 gives it. Each patch says what it saves; tests/unit/local/test_runtime.py
compares each with moto's own answer. Installed once per process by runtime.install()."""

from __future__ import annotations

import base64
import copy
import functools
import pickle
from collections.abc import Callable
from typing import Any


def install() -> None:
    _copy_dynamodb_values_directly()
    _convert_dynamodb_values_once()
    _parse_update_expressions_once()
    _walk_update_expression_trees_by_type()
    _check_clauses_and_paths_at_the_root()
    _serialize_attribute_values_directly()
    _project_top_level_attributes_directly()
    _scan_copying_only_what_it_returns()


def _copy_dynamodb_values_directly() -> None:
    """moto deep-copies a DynamoDB item twice on every UpdateItem (for ReturnValues and for the stream's old image),
    value by value through copy.deepcopy's dispatch and memo: the largest cost of an update of a large incident
    record. An attribute value is a tree of plain types and values without cycles or sharing, so it is copied
    directly, with the same result."""
    from moto.dynamodb.models.dynamo_type import DDBType, DynamoType

    sets = (DDBType.STRING_SET, DDBType.NUMBER_SET, DDBType.BINARY_SET)

    def copied(value: Any) -> Any:
        result = value.__class__.__new__(value.__class__)
        result.type = kind = value.type
        if kind == DDBType.LIST:
            result.value = [copied(item) for item in value.value]
        elif kind == DDBType.MAP:
            result.value = {key: copied(item) for key, item in value.value.items()}
        elif kind in sets:
            result.value = list(value.value)
        else:
            result.value = value.value
        return result

    DynamoType.__deepcopy__ = lambda self, memo: copied(self)  # type: ignore[method-assign]


def _convert_dynamodb_values_once() -> None:
    """moto's DynamoType.to_regular_json deep-copies its whole subtree and then converts each child, which deep-copies
    the child's subtree again: quadratic in the depth of a nested map (an incident record's actions), and paid for
    every item a Scan, GetItem or stream record returns. Each value is converted once, leaves copied as before."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    def to_regular_json(self: Any) -> dict[str, Any]:
        value = self.value
        if isinstance(value, dict):
            value = {
                key: item.to_regular_json() if isinstance(item, DynamoType) else copy.deepcopy(item)
                for key, item in value.items()
            }
        elif isinstance(value, list):
            value = [item.to_regular_json() if isinstance(item, DynamoType) else copy.deepcopy(item) for item in value]
        else:
            value = copy.deepcopy(value)
        if self.is_binary() and isinstance(value, str):
            value = base64.b64decode(value)
        return {self.type: value}

    DynamoType.to_regular_json = to_regular_json  # type: ignore[method-assign]


def _parse_update_expressions_once() -> None:
    """moto parses an UpdateExpression twice per UpdateItem (the handler for its names, the backend for the update),
    with a pure-Python tokeniser, and the validator deep-copies the tree before it fills in the values: about 2 ms
    of every update, for trees that depend on the expression's text alone. Each text is parsed and pickled once
    (the tree is plain objects with parent links); every caller, and every validator of a tree made so, gets its own
    copy unpickled from those bytes, a sixth of deepcopy's cost."""
    from moto.dynamodb.parsing import expressions as moto_expressions
    from moto.dynamodb.parsing import validators as moto_validators

    def pickled(tree: Any) -> bytes | None:
        try:
            return pickle.dumps(tree, pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError):
            return None

    def copied(tree: Any) -> Any:
        # A tree handed out by make keeps the bytes it came from: its callers read it, only a validator's own copy
        # is changed (and that copy keeps no bytes).
        kept = getattr(tree, "_firebreak_pickled", None) or pickled(tree)
        return pickle.loads(kept) if kept is not None else copy.deepcopy(tree)

    parser: Any = moto_expressions.UpdateExpressionParser  # type: ignore[attr-defined]

    # A syntax error raises and is never kept.
    @functools.lru_cache(maxsize=1024)
    def parsed(expression_str: str) -> tuple[Any, bytes | None]:
        tree = original_make(expression_str)
        return tree, pickled(tree)

    original_make = parser.make

    def make(expression_str: str) -> Any:
        tree, kept = parsed(expression_str)
        if kept is None:
            return copy.deepcopy(tree)
        made = pickle.loads(kept)
        made._firebreak_pickled = kept
        return made

    parser.make = make

    def validator_init(
        self: Any,
        expression: Any,
        expression_attribute_names: dict[str, str],
        expression_attribute_values: dict[str, dict[str, Any]],
        item: Any,
        table: Any,
    ) -> None:
        # moto 5.2.5's Validator.__init__, with the tree copied by pickle (the validator fills values into its copy).
        self.expression_attribute_names = expression_attribute_names
        self.expression_attribute_values = expression_attribute_values
        self.item = item
        self.table = table
        self.processors = self.get_ast_processors()
        self.node_to_validate = copied(expression)

    moto_validators.Validator.__init__ = validator_init  # type: ignore[method-assign]


def _walk_update_expression_trees_by_type() -> None:
    """moto's validator walks an UpdateExpression's tree (about ninety nodes) ten times, once per check, and asks at
    every node whether it is a Node and which of the check's classes it is, through ABCMeta's isinstance and a map
    of bound methods built anew each time, and calls the check's per-child hook, which nine of the ten do not have:
    most of an UpdateItem. The same walk, in the same order, with each answer kept per node class (the tree's classes
    are plain subclasses, none registered virtually), and the hook called only for the check that has one."""
    from moto.dynamodb.parsing import ast_nodes as moto_ast_nodes

    ast_nodes: Any = moto_ast_nodes  # moto's module is untyped (`# type: ignore` at its top)
    node_class = ast_nodes.Node
    descends = (ast_nodes.Expression, ast_nodes.UpdateExpressionFunction)
    is_node: dict[type, bool] = {}
    is_descended: dict[type, bool] = {}

    # check class -> {node class -> the position of the check's processor for that node class in its map, or None}
    positions: dict[type, dict[type, int | None]] = {}
    # check class -> whether it has a pre_processing_of_child of its own (the traverser's does nothing: not called)
    hooks: dict[type, bool] = {}
    no_hook = ast_nodes.DepthFirstTraverser.pre_processing_of_child

    def traverse(self: Any, node: Any) -> Any:
        check = type(self)
        order = tuple(self._processing_map().items())  # moto's map of bound methods, made anew for each walk
        known = positions.setdefault(check, {})
        processors: dict[type, Any] = {}
        if check not in hooks:
            hooks[check] = check.pre_processing_of_child is not no_hook
        hook = self.pre_processing_of_child if hooks[check] else None

        def processor_of(kind: type) -> Any:
            if kind not in known:
                known[kind] = next((at for at, (base, _) in enumerate(order) if issubclass(kind, base)), None)
            position = known[kind]
            processors[kind] = process = None if position is None else order[position][1]
            return process

        def walk(node: Any, child_id: int) -> Any:
            kind = type(node)
            a_node = is_node.get(kind)
            if a_node is None:
                a_node = is_node[kind] = issubclass(kind, node_class)
            if not a_node:
                return node
            parent = node.parent
            children = node.children
            if children is not None:
                for index, child in enumerate(children):
                    if hook is not None:
                        hook(node, index)
                    walk(child, index)
            process = processors[kind] if kind in processors else processor_of(kind)
            if process is not None:
                node = process(node)
                node.parent = parent
                if parent:
                    parent.children[child_id] = node
            return node

        return walk(node, -1)

    def find_clauses(self: Any, clause_types: Any) -> list[Any]:
        clauses: list[Any] = []
        for child in self.children or []:
            kind = type(child)
            if kind in clause_types:
                clauses.append(child)
                continue
            if kind not in is_descended:
                is_descended[kind] = issubclass(kind, descends)
            if is_descended[kind]:
                clauses.extend(child.find_clauses(clause_types))
        return clauses

    traverse.original = ast_nodes.DepthFirstTraverser.traverse  # type: ignore[attr-defined]
    find_clauses.original = ast_nodes.Node.find_clauses  # type: ignore[attr-defined]
    ast_nodes.DepthFirstTraverser.traverse = traverse
    ast_nodes.Node.find_clauses = find_clauses


def _check_clauses_and_paths_at_the_root() -> None:
    """moto counts an UpdateExpression's clauses, and looks for overlapping paths, at every node of its tree (nearly
    every node is an UpdateExpression), each time over the node's whole subtree: quadratic, a fifth of an UpdateItem.
    Every clause and action a subtree holds the whole expression holds too, so both checks pass at every node when
    they pass at the root: they run there once, and only an expression refused at the root is walked node by node,
    for the refusal moto gives."""
    from moto.dynamodb import exceptions as moto_dynamodb_exceptions
    from moto.dynamodb.parsing import ast_nodes as moto_ast_nodes
    from moto.dynamodb.parsing import validators as moto_validators

    expression_class: Any = moto_ast_nodes.UpdateExpression  # type: ignore[attr-defined]
    refused = (moto_dynamodb_exceptions.MockValidationException, KeyError)
    checks: Any = (
        (moto_validators.ActionCountValidator, "verify_action_counts"),
        (moto_validators.OverlappingPathsValidator, "check_for_overlapping_paths"),
    )
    for check_class, method in checks:
        walk = check_class.traverse

        def traverse(self: Any, node: Any, walk: Any = walk, method: str = method) -> Any:
            if isinstance(node, expression_class):
                try:
                    getattr(self, method)(node)
                except refused:
                    return walk(self, node)
                return node
            return walk(self, node)

        traverse.original = walk  # type: ignore[attr-defined]
        check_class.traverse = traverse


def _serialize_attribute_values_directly() -> None:
    """moto serialises every DynamoDB attribute value of a response through its generic shape walker: for each of the
    ten members of AttributeValue, a picker tries several spellings of the key, for every value of every item. That
    was half of each Scan. An attribute value in a response is already its JSON form (moto's to_regular_json, with
    binaries as bytes), so it is written directly, by the rules the walker applies to its member types; anything else
    (a key or type those rules do not cover, a response with transformers) goes the generic way."""
    from moto.core.serialize import BaseJSONSerializer

    original = BaseJSONSerializer._serialize_type_structure

    def structure(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        if key and shape.name == "AttributeValue" and isinstance(value, dict) and not _has_transformers(self):
            direct = _attribute_value(value, self._base64)
            if direct is not None:
                serialized[self.get_serialized_name(shape, key)] = direct
                return
        original(self, serialized, value, shape, key)

    BaseJSONSerializer._serialize_type_structure = structure  # type: ignore[method-assign]


def _has_transformers(serializer: Any) -> bool:
    return bool(getattr(serializer._value_picker, "response_transformers", None))


_STRINGS = ("S", "N")
_STRING_SETS = ("SS", "NS")
_BOOLEANS = ("NULL", "BOOL")


def _attribute_value(value: dict[str, Any], base64_of: Callable[[Any], str]) -> dict[str, Any] | None:
    """The JSON of one attribute value as moto's serializer writes it; None when it is not one this can write."""
    out: dict[str, Any] = {}
    for member, item in value.items():
        if item is None:
            continue
        if (member in _STRINGS and isinstance(item, str)) or (member in _BOOLEANS and isinstance(item, bool)):
            out[member] = item
        elif member == "B" and isinstance(item, bytes | str):
            out[member] = base64_of(item)
        elif member in _STRING_SETS and isinstance(item, list) and all(isinstance(x, str) for x in item):
            out[member] = list(item)
        elif member == "BS" and isinstance(item, list) and all(isinstance(x, bytes | str) for x in item):
            out[member] = [base64_of(x) for x in item]
        elif member == "M" and isinstance(item, dict) and all(isinstance(x, dict) for x in item.values()):
            entries = {name: _attribute_value(entry, base64_of) for name, entry in item.items()}
            if any(entry is None for entry in entries.values()):
                return None
            out[member] = entries
        elif member == "L" and isinstance(item, list) and all(isinstance(x, dict) for x in item):
            members = [_attribute_value(entry, base64_of) for entry in item]
            if any(entry is None for entry in members):
                return None
            out[member] = members
        else:
            return None
    return out


def _project_top_level_attributes_directly() -> None:
    """moto projects an item (a Scan's or a BatchGetItem's ProjectionExpression) by converting the whole item to
    Python values once per projected path, picking the path and converting back: a third of a projected Scan. A
    projection of top-level names only copies those attributes as stored, the way an unprojected read returns them;
    nested paths and list items go moto's way."""
    from moto.dynamodb.models.dynamo_type import Item

    original = Item.project

    def project(self: Any, projection_expressions: list[list[str]]) -> Any:
        if not all(len(path) == 1 and "[" not in path[0] for path in projection_expressions):
            return original(self, projection_expressions)
        projected = Item(hash_key=self.hash_key, range_key=self.range_key, attrs={})
        for (name,) in projection_expressions:
            if name in self.attrs:
                # Past LimitedSizeDict's check, which sizes the whole dict at every insert, as moto's own Item copy
                # goes: a part of a stored item is within the item size limit.
                dict.__setitem__(projected.attrs, name, copy.deepcopy(self.attrs[name]))
        return projected

    Item.project = project  # type: ignore[method-assign]


def _scan_copying_only_what_it_returns() -> None:
    """moto's Scan deep-copies every item that passes its filters, then, given a ProjectionExpression, builds the
    projection of that copy; and it sizes each item twice (for the 1 MB page: once to check, once to count), walking
    the whole item each time. The blocklist's Scans (every block step, every writer batch) return three attributes of
    each entry. moto 5.2.5's scan of a table, in its order: each item sized once, the filter expression read on the
    stored item (it changes nothing), and each item returned copied once, as its projection when it has one. A scan
    of an index goes moto's own way."""
    from moto.dynamodb.models import table as moto_table

    table_class: Any = moto_table.Table
    original = table_class.scan

    def scan(
        self: Any,
        filters: dict[str, Any],
        limit: int,
        exclusive_start_key: dict[str, Any],
        filter_expression: Any = None,
        index_name: str | None = None,
        consistent_read: bool = False,
        projection_expression: list[list[str]] | None = None,
        segments: Any = (None, None),
    ) -> Any:
        if index_name:
            return original(
                self,
                filters,
                limit,
                exclusive_start_key,
                filter_expression,
                index_name,
                consistent_read,
                projection_expression,
                segments,
            )
        hash_attrs, range_attrs = [self.hash_key_attr], [self.range_key_attr]
        results: list[Any] = []
        result_size = scanned_count = 0
        last_evaluated_key = None
        processing_previous_page = exclusive_start_key is not None
        for item in self.all_items():
            if not item.is_within_segment(segments):
                continue
            if processing_previous_page:
                if self._item_comes_before_dct(item, exclusive_start_key, hash_attrs, range_attrs, True):
                    continue
                processing_previous_page = False
            size = item.size()
            if len(results) == limit or result_size + size > moto_table.RESULT_SIZE_LIMIT:
                last_evaluated_key = self._get_last_evaluated_key(results[-1], index_name)
                break
            if _passes_scan_filters(item, filters):
                results.append(item)
                result_size += size
            scanned_count += 1
        if filter_expression is not None:
            results = [item for item in results if filter_expression.expr(item)]
        if projection_expression:
            results = [item.project(projection_expression) for item in results]
        else:
            results = [copy.deepcopy(item) for item in results]
        return results, scanned_count, last_evaluated_key

    scan.original = original  # type: ignore[attr-defined]
    table_class.scan = scan


def _passes_scan_filters(item: Any, filters: dict[str, Any]) -> bool:
    """moto 5.2.5's test of an item against a Scan's legacy ScanFilter conditions."""
    for attribute_name, (comparison_operator, comparison_objs) in filters.items():
        attribute = item.attrs.get(attribute_name)
        if attribute:
            if not attribute.compare(comparison_operator, comparison_objs):
                return False
        elif comparison_operator != "NULL":
            return False
    return True
