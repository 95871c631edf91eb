"""The OpenAPI 2.0 document: valid by the kept validator, and the same routes as function_app.py."""

from __future__ import annotations

import re
from typing import Any

import pytest
from openapi_spec_validator import validate
from openapi_spec_validator.validation import OpenAPIV2SpecValidator

from triggers.openapi import document, to_swagger, words


def app_routes() -> set[tuple[str, str]]:
    import function_app

    routes = set()
    function_app.app.functions_bindings = {}  # get_functions() is not idempotent
    for function in function_app.app.get_functions():
        trigger = function.get_trigger()
        if trigger.type != "httpTrigger":
            continue
        for method in trigger.methods:
            routes.add((str(getattr(method, "value", method)).lower(), "/" + re.sub(r"\{(\w+)[^}]*\}", r"{\1}",
                                                                                     trigger.route)))
    return routes


def described_routes(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method, path) for path, item in doc["paths"].items() for method in item}


def test_document_is_valid_openapi_2() -> None:
    validate(document(), cls=OpenAPIV2SpecValidator)


def test_every_route_is_described_and_every_description_is_a_route() -> None:
    routes = app_routes()
    assert len(routes) >= 15
    assert described_routes(document()) == routes


def test_logic_apps_extensions_are_there() -> None:
    doc = document()
    for path, item in doc["paths"].items():
        for method, op in item.items():
            assert op["summary"] and op["x-ms-visibility"] in ("important", "advanced", "internal"), (method, path)
            for parameter in op["parameters"]:
                assert parameter["in"] == "body" or parameter.get("x-ms-summary"), (path, parameter["name"])
            if op.get("x-ms-long-running-operation"):
                assert "202" in op["responses"] and "Location" in op["responses"]["202"]["headers"]
    assert doc["paths"]["/health"]["get"]["security"] == []
    callback = doc["definitions"]["Subscription"]["properties"]["callbackUrl"]
    assert callback["x-ms-notification-url"] is True and callback["x-ms-visibility"] == "internal"
    for request in ("ClusterSpecRequest", "VerifyRequestBody", "RestoreRequestBody", "DrillRequestBody"):
        assert "callbackUrl" in doc["definitions"][request]["properties"]


@pytest.mark.parametrize(("schema", "expected"), [
    ({"anyOf": [{"type": "string", "maxLength": 5}, {"type": "null"}], "default": None, "title": "X"},
     {"type": "string", "maxLength": 5}),
    ({"anyOf": [{"$ref": "#/$defs/Recovery"}, {"type": "null"}]}, {"$ref": "#/definitions/Recovery"}),
    ({"const": "x"}, {"enum": ["x"]}),
    ({"type": "number", "exclusiveMinimum": 0}, {"type": "number", "minimum": 0, "exclusiveMinimum": True}),
    ({"type": "object", "patternProperties": {"^a$": {"type": "string"}}},
     {"type": "object", "additionalProperties": {"type": "string"}}),
])
def test_json_schema_is_narrowed_to_swagger_2(schema: dict[str, Any], expected: dict[str, Any]) -> None:
    assert to_swagger(schema) == expected


def test_labels_read_as_words() -> None:
    assert words("destinationPath") == "Destination path"
    assert words("pg_hba") == "Pg hba"
