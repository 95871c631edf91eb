"""What a real Kubernetes API server (plus CloudNativePG's webhooks) refuses, for the objects pgha writes.

A pure module: no HTTP. `admit()` takes an object as a client sends it and returns it as the server would
store it, plus the warnings the server would send back, or raises `Invalid` with the status the server
would answer. The fake API server (fake_kube.py) can call it on create/update.

Sources, named next to each behaviour below:

- The CRD schemas are CloudNativePG's and the Barman Cloud plugin's published CRDs, and prometheus-operator's
  PodMonitor, PrometheusRule (monitoring.coreos.com/v1) and AlertmanagerConfig (monitoring.coreos.com/
  v1alpha1) CRDs, stored unmodified in fixtures/crds/ (see fixtures/crds/SOURCES.md); the
  prometheus-operator ones are the same for every CNPG version. Their `pattern`s are Go (RE2) regular
  expressions; the inline flag groups some use mid-pattern (`^(?i)(abort|warn)?$`) are rewritten to
  Python's scoped form (`_go_pattern`). Structural-schema semantics (pruning, defaulting,
  unknown fields, CEL) follow k8s.io/apiextensions-apiserver (pkg/apiserver/schema/{pruning,defaulting,
  cel,listtype}, pkg/apiserver/validation/validation.go for how kube-openapi errors become field errors,
  pkg/registry/customresource/strategy.go for the order of checks).
- Object names, labels and annotations: k8s.io/apimachinery pkg/api/validation (ValidateObjectMeta,
  ValidateAnnotations), pkg/apis/meta/v1/validation (ValidateLabels) and pkg/util/validation/validation.go
  (IsDNS1123Subdomain, IsDNS1123Label, IsDNS1035Label, IsQualifiedName, IsValidLabelValue, parseCIDR).
- Services: k8s.io/kubernetes pkg/apis/core/validation/validation.go ValidateService (a subset).
- CloudNativePG's admission webhooks: internal/webhook/v1/cluster_webhook.go and api/v1/cluster_defaults.go
  at tags v1.29.2 and v1.30.0 (only the rules named below).

Coverage (what is NOT checked):
- Core kinds (Service, Secret, ConfigMap, Namespace, Pod, ...) have no schema here: unknown fields and
  wrong types in them are not detected; only metadata name/label/annotation rules, plus the Service rules
  in `_validate_service`.
- PodMonitor of azmonitoring.coreos.com/v1 (Azure Managed Prometheus' own group; its CRD, shipped by the
  ama-metrics add-on, is not stored here): only apiVersion/kind and the metadata rules are checked -- no
  schema, no pruning. The monitoring.coreos.com/v1 PodMonitor is checked against prometheus-operator's CRD.
- monitoring.coreos.com kinds other than PodMonitor/PrometheusRule (v1) and AlertmanagerConfig (v1alpha1)
  are answered 404, as are AlertmanagerConfig's v1beta1 (served only by the CRD of
  example/prometheus-operator-crd-full, with its conversion webhook; kube-prometheus-stack installs the
  v1alpha1-only CRD) and PrometheusRule/PodMonitor in other versions. prometheus-operator's own validating
  webhook (admission-webhook: PromQL parsing of `expr`, AlertmanagerConfig semantic checks) is not emulated.
- CloudNativePG's validating webhooks do far more than the Cluster name rule (instances vs synchronous
  replicas, storage, PostgreSQL parameters, ...); only `validateName` is emulated. Of its defaulting
  webhook only `synchronous.dataDurability` is emulated (the CRD's CEL rule needs it, see `_cnpg_mutate`).
- status: validated against the schema like spec (as the /status subresource would). The real server
  drops `status` on create through the main resource (status subresource enabled); that is not done here.
- Updates: CRD validation ratcheting (unchanged invalid fields are let through on update, k8s >= 1.30)
  is not emulated; every update is validated in full. Transition rules (`oldSelf`) run only when `old`
  is given and has the value.
- int32/int64 `format` bounds are not enforced (the real server does not either: those formats are not
  string formats in kube-openapi's registry).
"""

from __future__ import annotations

import base64
import binascii
import copy
import ipaddress
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

CRD_DIR = Path(__file__).parent / "fixtures" / "crds"
CNPG_DIRS = {"1.29": "cnpg-1.29.2", "1.30": "cnpg-1.30.0"}
PLUGIN_DIR = "plugin-barman-cloud-0.14.0"
PROMETHEUS_OPERATOR_DIR = "prometheus-operator-0.93.0"  # the CRDs kube-prometheus-stack installs

# CEL rules found in the fixtures that this module cannot evaluate, as "<crd file> <path>: <rule>".
# Empty: cel-python evaluates all of them (transition rules with `oldSelf` only when `old` is passed).
# test_admission.py (CNPG, plugin) and test_prometheus_operator_crds.py (prometheus-operator) recompute
# this set from the fixtures, so it cannot go stale.
CEL_NOT_COVERED: frozenset[str] = frozenset()

STRICT, WARN, IGNORE = "Strict", "Warn", "Ignore"

# ObjectMeta's fields (k8s.io/apimachinery pkg/apis/meta/v1/types.go ObjectMeta): anything else under a
# custom resource's metadata is an unknown field (apiextensions-apiserver schema/objectmeta coerce).
OBJECT_META_FIELDS = frozenset({
    "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
    "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels", "annotations",
    "ownerReferences", "finalizers", "managedFields",
})


class Invalid(Exception):
    """A refusal as the API server sends it: HTTP `code`, Status `reason` and `message`."""

    def __init__(self, code: int, reason: str, message: str, causes: list[dict[str, str]] | None = None,
                 kind: str = "", group: str = "", name: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.causes = causes or []
        self.kind, self.group, self.name = kind, group, name

    def status(self) -> dict[str, Any]:
        """The metav1.Status body the server answers with."""
        body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                "message": self.message, "reason": self.reason, "code": self.code}
        if self.causes or self.kind:
            details: dict[str, Any] = {"name": self.name, "kind": self.kind}
            if self.group:
                details["group"] = self.group
            if self.causes:
                details["causes"] = self.causes
            body["details"] = details
        return body


# --- field errors (k8s.io/apimachinery pkg/util/validation/field/errors.go) -------------------------------

_ERROR_TYPES = {
    # our type -> (rendered type string, Status cause reason)
    "Required": ("Required value", "FieldValueRequired"),
    "Invalid": ("Invalid value", "FieldValueInvalid"),
    "TypeInvalid": ("Invalid value", "FieldValueTypeInvalid"),
    "NotSupported": ("Unsupported value", "FieldValueNotSupported"),
    "Forbidden": ("Forbidden", "FieldValueForbidden"),
    "TooLong": ("Too long", "FieldValueTooLong"),
    "TooMany": ("Too many", "FieldValueTooMany"),
    "Duplicate": ("Duplicate value", "FieldValueDuplicate"),
}
_OMIT_VALUE = {"Required", "Forbidden", "TooLong"}  # field.Error.ErrorBody prints no value for these


@dataclass
class FieldError:
    type: str
    field: str
    value: Any = None
    detail: str = ""

    def body(self) -> str:
        kind = _ERROR_TYPES[self.type][0]
        text = kind if self.type in _OMIT_VALUE else f"{kind}: {_render_value(self.value)}"
        return f"{text}: {self.detail}" if self.detail else text

    def __str__(self) -> str:
        return f"{self.field}: {self.body()}"

    def cause(self) -> dict[str, str]:
        return {"reason": _ERROR_TYPES[self.type][1], "message": self.body(), "field": self.field}


def _render_value(value: Any) -> str:
    # field.Error.ErrorBody: strings %q, numbers/bools %v, nil "null", anything else Go's %#v.
    if value is None:
        return '"null"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return _go_repr(value)


def _go_repr(value: Any) -> str:
    """Go's %#v of an unstructured value (map keys sorted, as fmt does)."""
    if isinstance(value, dict):
        return "map[string]interface {}{" + ", ".join(
            f"{json.dumps(k)}:{_go_repr(v)}" for k, v in sorted(value.items())) + "}"
    if isinstance(value, list):
        return "[]interface {}{" + ", ".join(_go_repr(v) for v in value) + "}"
    if value is None:
        return "interface {}(nil)"
    return _render_value(value)


def _quote_list(values: list[Any]) -> str:
    return ", ".join(json.dumps(v if isinstance(v, str) else _render_value(v)) for v in values)


def _invalid(kind: str, group: str, name: str, errors: list[FieldError], prefix: str = "") -> Invalid:
    # apierrors.NewInvalid: `<Kind>.<group> "<name>" is invalid: <err>` or `... is invalid: [<e1>, <e2>]`.
    qualified = f"{kind}.{group}" if group else kind
    joined = str(errors[0]) if len(errors) == 1 else "[" + ", ".join(str(e) for e in errors) + "]"
    return Invalid(422, "Invalid", f'{prefix}{qualified} "{name}" is invalid: {joined}',
                   [e.cause() for e in errors], kind=kind, group=group, name=name)


# --- name rules (k8s.io/apimachinery pkg/util/validation/validation.go) ----------------------------------

_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + r"(\." + _DNS1123_LABEL_FMT + ")*"
_DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE_FMT = "(" + _QUALIFIED_NAME_FMT + ")?"
_QUALIFIED_NAME_MSG = ("must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
                       "alphanumeric character")


def _regex_error(msg: str, fmt: str, *examples: str) -> str:
    # RegexError, including its double space between examples.
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    return msg + " (e.g. " + " or ".join(f"'{e}', " for e in examples) + f"regex used for validation is '{fmt}')"


def _max_len(n: int) -> str:
    return f"must be no more than {n} characters"


def is_dns1123_subdomain(value: str) -> list[str]:
    return _dns_name(value, 253, _DNS1123_SUBDOMAIN_FMT, "a lowercase RFC 1123 subdomain must consist of lower "
                     "case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric "
                     "character", "example.com")


def _dns_name(value: str, limit: int, fmt: str, message: str, *examples: str) -> list[str]:
    """The shape of apimachinery's IsDNS1123Label / IsDNS1035Label: a length limit, then the pattern."""
    errs = [_max_len(limit)] if len(value) > limit else []
    if not re.fullmatch(fmt, value):
        errs.append(_regex_error(message, fmt, *examples))
    return errs


def is_dns1123_label(value: str) -> list[str]:
    return _dns_name(value, 63, _DNS1123_LABEL_FMT, "a lowercase RFC 1123 label must consist of lower case "
                     "alphanumeric characters or '-', and must start and end with an alphanumeric character",
                     "my-name", "123-abc")


def is_dns1035_label(value: str) -> list[str]:
    return _dns_name(value, 63, _DNS1035_LABEL_FMT, "a DNS-1035 label must consist of lower case alphanumeric "
                     "characters or '-', start with an alphabetic character, and end with an alphanumeric "
                     "character", "my-name", "abc-123")


def is_qualified_name(value: str) -> list[str]:
    parts = value.split("/")
    errs: list[str] = []
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + m for m in is_dns1123_subdomain(prefix))
    else:
        return ["a qualified name " + _regex_error(_QUALIFIED_NAME_MSG, _QUALIFIED_NAME_FMT, "MyName", "my.name",
                                                   "123-abc")
                + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part " + _max_len(63))
    if not re.fullmatch(_QUALIFIED_NAME_FMT, name):
        errs.append("name part " + _regex_error(_QUALIFIED_NAME_MSG, _QUALIFIED_NAME_FMT, "MyName", "my.name",
                                                "123-abc"))
    return errs


def is_valid_label_value(value: str) -> list[str]:
    errs = [_max_len(63)] if len(value) > 63 else []
    if not re.fullmatch(_LABEL_VALUE_FMT, value):
        errs.append(_regex_error("a valid label must be an empty string or consist of alphanumeric characters, "
                                 "'-', '_' or '.', and must start and end with an alphanumeric character",
                                 _LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs


# Which name rule each kind's metadata.name follows (k8s.io/kubernetes pkg/apis/core/validation/validation.go:
# ValidateServiceName = NameIsDNS1035Label, ValidateNamespaceName = NameIsDNSLabel, Secret/ConfigMap/Pod/
# ServiceAccount/PVC = NameIsDNSSubdomain; custom resources: apiextensions-apiserver
# pkg/registry/customresource/validator.go uses NameIsDNSSubdomain).
_NAME_RULES = {("", "Service"): is_dns1035_label, ("", "Namespace"): is_dns1123_label}

TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024  # apimachinery pkg/api/validation/objectmeta.go TotalAnnotationSizeLimitB


def validate_object_meta(meta: Any, group: str, kind: str) -> list[FieldError]:
    """ValidateObjectMeta: name (per kind), namespace, labels, annotations."""
    if not isinstance(meta, dict):
        return [FieldError("TypeInvalid", "metadata", _json_type(meta),
                           f'metadata in body must be of type object: "{_json_type(meta)}"')]
    errs: list[FieldError] = []
    name, generate_name = meta.get("name"), meta.get("generateName")
    rule = _NAME_RULES.get((group, kind), is_dns1123_subdomain)
    if not name and not generate_name:
        errs.append(FieldError("Required", "metadata.name", detail="name or generateName is required"))
    elif name:
        errs.extend(FieldError("Invalid", "metadata.name", name, m) for m in rule(str(name)))
    namespace = meta.get("namespace")
    if namespace and kind != "Namespace":
        errs.extend(FieldError("Invalid", "metadata.namespace", namespace, m) for m in is_dns1123_label(namespace))
    labels = meta.get("labels") or {}
    for key, value in labels.items():
        errs.extend(FieldError("Invalid", "metadata.labels", key, m) for m in is_qualified_name(key))
        if not isinstance(value, str):
            errs.append(FieldError("TypeInvalid", f"metadata.labels.{key}", _json_type(value),
                                   f'metadata.labels.{key} in body must be of type string: "{_json_type(value)}"'))
            continue
        errs.extend(FieldError("Invalid", "metadata.labels", value, m) for m in is_valid_label_value(value))
    annotations = meta.get("annotations") or {}
    for key in annotations:
        # ValidateAnnotations: QualifiedName, case-insensitively.
        errs.extend(FieldError("Invalid", "metadata.annotations", key, m) for m in is_qualified_name(key.lower()))
    size = sum(len(k.encode()) + len(str(v).encode()) for k, v in annotations.items())
    if size > TOTAL_ANNOTATION_SIZE_LIMIT:
        errs.append(FieldError("TooLong", "metadata.annotations",
                               detail=f"may not be more than {TOTAL_ANNOTATION_SIZE_LIMIT} bytes"))
    return errs


# --- Service (k8s.io/kubernetes pkg/apis/core/validation/validation.go ValidateService, a subset) ---------

_SERVICE_TYPES = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]
_PROTOCOLS = ["SCTP", "TCP", "UDP"]


def _port_num_errors(value: Any) -> list[str]:
    # IsValidPortNum
    return [] if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535 else [
        "must be between 1 and 65535, inclusive"]


def _port_name_errors(name: str) -> list[str]:
    # IsValidPortName (IANA_SVC_NAME)
    errs = []
    if len(name) > 15:
        errs.append(_max_len(15))
    if not re.fullmatch("[-a-z0-9]+", name):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search("[a-z]", name):
        errs.append("must contain at least one letter (a-z)")
    if "--" in name:
        errs.append("must not contain consecutive hyphens")
    if name.startswith("-") or name.endswith("-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def _cidr_errors(value: str) -> tuple[list[str], list[str]]:
    """pkg/util/validation/ip.go parseCIDR / GetWarningsForCIDR: (errors, warnings).

    Malformed CIDRs are refused. The "strict" forms (leading zeros, bits set past the prefix length) are
    refused only with the StrictIPCIDRValidation feature gate; here they are warnings, as on servers
    without it (GetWarningsForCIDR)."""
    try:
        if "/" not in value:
            raise ValueError(value)
        net = ipaddress.ip_network(value, strict=False)
    except ValueError:
        return ["must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"], []
    if net.network_address != ipaddress.ip_address(value.split("/")[0]):
        return [], [f'CIDR value "{value}" is ambiguous in this context (should be "{net}" or '
                    f'"{value.split("/")[0]}/{net.max_prefixlen}"?)']
    return [], []


def _validate_service(obj: dict[str, Any]) -> tuple[list[FieldError], list[str]]:
    spec = obj.get("spec") or {}
    errs: list[FieldError] = []
    warnings: list[str] = []
    svc_type = spec.get("type") or "ClusterIP"
    if svc_type not in _SERVICE_TYPES:
        errs.append(FieldError("NotSupported", "spec.type", svc_type, "supported values: " + _quote_list(
            _SERVICE_TYPES)))
    ports = spec.get("ports") or []
    if not ports and svc_type != "ExternalName" and spec.get("clusterIP") != "None":
        errs.append(FieldError("Required", "spec.ports"))
    names: set[str] = set()
    for i, port in enumerate(ports):
        path = f"spec.ports[{i}]"
        for key in ("port", "nodePort"):
            if isinstance(port.get(key), (str, float, bool)):
                # Decoding into the typed Service fails before validation (400, not 422).
                actual = {str: "string", float: "number", bool: "bool"}[type(port[key])]
                raise Invalid(400, "BadRequest", 'Service in version "v1" cannot be handled as a Service: json: '
                              f"cannot unmarshal {actual} into Go struct field ServicePort.spec.ports.{key} of "
                              "type int32")
        name = port.get("name") or ""
        if len(ports) > 1 and not name:
            errs.append(FieldError("Required", f"{path}.name"))
        elif name:
            errs.extend(FieldError("Invalid", f"{path}.name", name, m) for m in is_dns1123_label(name))
            if name in names:
                errs.append(FieldError("Duplicate", f"{path}.name", name))
            names.add(name)
        errs.extend(FieldError("Invalid", f"{path}.port", port.get("port"), m)
                    for m in _port_num_errors(port.get("port")))
        protocol = port.get("protocol", "TCP")
        if protocol not in _PROTOCOLS:
            errs.append(FieldError("NotSupported", f"{path}.protocol", protocol,
                                   "supported values: " + _quote_list(_PROTOCOLS)))
        target = port.get("targetPort")
        if isinstance(target, str):
            errs.extend(FieldError("Invalid", f"{path}.targetPort", target, m) for m in _port_name_errors(target))
        elif target not in (None, 0):
            errs.extend(FieldError("Invalid", f"{path}.targetPort", target, m) for m in _port_num_errors(target))
    ranges = spec.get("loadBalancerSourceRanges") or []
    if ranges:
        # The capital L is the real server's (a historical accident in ValidateService).
        path = "spec.LoadBalancerSourceRanges"
        if svc_type != "LoadBalancer":
            errs.append(FieldError("Forbidden", path, detail="may only be used when `type` is 'LoadBalancer'"))
        for i, value in enumerate(ranges):
            bad, warn = _cidr_errors(str(value).strip())
            errs.extend(FieldError("Invalid", f"{path}[{i}]", value, m) for m in bad)
            warnings.extend(f"spec.loadBalancerSourceRanges[{i}]: {w}" for w in warn)
    for key, value in (spec.get("selector") or {}).items():
        errs.extend(FieldError("Invalid", "spec.selector", key, m) for m in is_qualified_name(key))
        errs.extend(FieldError("Invalid", "spec.selector", value, m) for m in is_valid_label_value(str(value)))
    return errs, warnings


# --- CRD schemas -----------------------------------------------------------------------------------------


class _CrdLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """YAML as the API server's client reads a CRD (sigs.k8s.io/yaml, go-yaml): a lone `=` is the string "="
    (AlertmanagerConfig's matchType enum), not PyYAML's YAML 1.1 `!!value` tag, which SafeLoader cannot load.
    libyaml's parser when PyYAML has it: the AlertmanagerConfig CRD is 800 KB."""


_CrdLoader.add_constructor("tag:yaml.org,2002:value", yaml.SafeLoader.construct_yaml_str)


@cache
def _crd_dir(directory: str) -> dict[tuple[str, str, str], dict[str, Any]]:
    """One fixture folder's CRDs: (group, kind, version) -> {"schema", "plural", "file"} per served version."""
    out: dict[tuple[str, str, str], dict[str, Any]] = {}
    for path in sorted((CRD_DIR / directory).glob("*.yaml")):
        crd = yaml.load(path.read_text(), Loader=_CrdLoader)
        for v in crd["spec"]["versions"]:
            if v.get("served"):
                out[(crd["spec"]["group"], crd["spec"]["names"]["kind"], v["name"])] = {
                    "schema": v["schema"]["openAPIV3Schema"], "plural": crd["spec"]["names"]["plural"],
                    "file": f"{directory}/{path.name}"}
    return out


@cache
def _crds(version: str) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(group, kind, version) -> {"schema": that served version's openAPIV3Schema, "plural", "file"}: the CRDs
    of CloudNativePG `version`, of the plugin and of prometheus-operator (the same for every version)."""
    if version not in CNPG_DIRS:
        raise ValueError(f"unknown CloudNativePG version {version!r}; expected one of {sorted(CNPG_DIRS)}")
    out: dict[tuple[str, str, str], dict[str, Any]] = {}
    for directory in (CNPG_DIRS[version], PLUGIN_DIR, PROMETHEUS_OPERATOR_DIR):
        out.update(_crd_dir(directory))
    return out


def crd_schema(api_version: str, kind: str, version: str = "1.30") -> dict[str, Any] | None:
    group, _, ver = api_version.rpartition("/")
    entry = _crds(version).get((group, kind, ver))
    return entry["schema"] if entry else None


def cel_rules(version: str, directories: tuple[str, ...] | None = None) -> list[tuple[str, str, str]]:
    """Every x-kubernetes-validations rule in the fixtures used for `version`: (crd file, path, rule).

    By default those of CloudNativePG's and the plugin's CRDs (`version` picks them; test_admission.py has a
    case for each); `directories` names other fixture folders, e.g. (PROMETHEUS_OPERATOR_DIR,), whose rules
    test_prometheus_operator_crds.py covers."""
    wanted = directories if directories is not None else (CNPG_DIRS.get(version, version), PLUGIN_DIR)
    found: list[tuple[str, str, str]] = []

    def walk(schema: dict[str, Any], path: str, file: str) -> None:
        for rule in schema.get("x-kubernetes-validations") or []:
            found.append((file, path or ".", rule["rule"]))
        for key, sub in (schema.get("properties") or {}).items():
            walk(sub, f"{path}.{key}", file)
        if isinstance(schema.get("items"), dict):
            walk(schema["items"], f"{path}[*]", file)
        if isinstance(schema.get("additionalProperties"), dict):
            walk(schema["additionalProperties"], f"{path}[*]", file)

    for entry in _crds(version).values():
        if entry["file"].split("/")[0] in wanted:
            walk(entry["schema"], "", entry["file"])
    return found


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _has_type(value: Any, schema: dict[str, Any]) -> bool:
    if schema.get("x-kubernetes-int-or-string"):
        return isinstance(value, (int, str)) and not isinstance(value, bool)
    wanted = schema.get("type")
    if not wanted:
        return True
    actual = _json_type(value)
    if wanted == "integer":
        return actual == "integer" or (actual == "number" and float(value).is_integer())
    if wanted == "number":
        return actual in ("integer", "number")
    return actual == wanted


_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


def _format_ok(fmt: str, value: str) -> bool:
    # apiextensions-apiserver validation uses kube-openapi's strfmt registry; only the string formats found
    # in the fixtures (date-time, byte) are checked. int32/int64 are not string formats: not enforced.
    if fmt == "date-time":
        return bool(_DATE_TIME.fullmatch(value))
    if fmt == "byte":
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return False
    return True


@cache
def _go_pattern(pattern: str) -> str:
    """A Go (RE2) regular expression as Python's `re` reads it. Go lets a flag group `(?i)` stand anywhere,
    applying to the rest of the enclosing group; Python (>= 3.11) accepts global flags only at the very
    start, so `(?i)rest` becomes the scoped `(?i:rest)`, closed where the enclosing group closes."""
    out: list[str] = []
    extra = [0]  # per open group: scoped flag groups to close with it
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if char == "[":  # a character class, copied as is (a `]` right after `[` or `[^` is literal)
            end = i + 1
            if end < len(pattern) and pattern[end] == "^":
                end += 1
            if end < len(pattern) and pattern[end] == "]":
                end += 1
            while end < len(pattern) and pattern[end] != "]":
                end += 2 if pattern[end] == "\\" else 1
            out.append(pattern[i:end + 1])
            i = end + 1
            continue
        flags = re.match(r"\(\?([ims-]+)\)", pattern[i:])
        if flags and i > 0:
            out.append(f"(?{flags.group(1)}:")
            extra[-1] += 1
            i += len(flags.group(0))
            continue
        if char == "(":
            extra.append(0)
        elif char == ")" and len(extra) > 1:
            out.append(")" * extra.pop())
        out.append(char)
        i += 1
    out.append(")" * extra[0])
    return "".join(out)


class _Walker:
    """One pass over an object with its structural schema: prune (collecting unknown fields), default, and
    validate the OpenAPI keywords (apiextensions-apiserver pruning, defaulting, validation)."""

    def __init__(self, defaults: bool) -> None:
        self.defaults = defaults
        self.errors: list[FieldError] = []
        self.unknown: list[str] = []

    def error(self, *args: Any) -> None:
        self.errors.append(FieldError(*args))

    def walk(self, value: Any, schema: dict[str, Any], path: str) -> Any:
        if value is None:
            if not schema.get("nullable") and (schema.get("type") or schema.get("x-kubernetes-int-or-string")):
                self._type_error(value, schema, path)
            return value
        if not _has_type(value, schema):
            self._type_error(value, schema, path)
            return value
        if isinstance(value, dict):
            value = self._object(value, schema, path)
        elif isinstance(value, list):
            value = self._array(value, schema, path)
        self._scalar_keywords(value, schema, path)
        return value

    def _type_error(self, value: Any, schema: dict[str, Any], path: str) -> None:
        # kube-openapi InvalidType -> field.TypeInvalid(path, <actual type>, "<path> in body must be of type T: ..")
        wanted = "integer,string" if schema.get("x-kubernetes-int-or-string") else schema.get("type")
        actual = _json_type(value)
        self.error("TypeInvalid", path, actual, f'{path} in body must be of type {wanted}: "{actual}"')

    def _object(self, value: dict[str, Any], schema: dict[str, Any], path: str) -> dict[str, Any]:
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        preserve = schema.get("x-kubernetes-preserve-unknown-fields")
        out: dict[str, Any] = {}
        for key, item in value.items():
            sub = f"{path}.{key}" if path else key
            if key in props or (not path and key == "metadata"):
                # metadata is ObjectMeta, checked by validate_object_meta, not by the CRD schema.
                out[key] = item
            elif isinstance(extra, dict):
                out[key] = self.walk(item, extra, sub)
            elif extra is True or preserve:
                out[key] = item
            else:
                # pruning.go: not in properties, no additionalProperties, no preserve-unknown-fields.
                self.unknown.append(sub)
        for key, sub_schema in props.items():
            sub = f"{path}.{key}" if path else key
            # defaulting/algorithm.go: absent, or null while not nullable, takes the default.
            if self.defaults and "default" in sub_schema and (
                    key not in out or (out[key] is None and not sub_schema.get("nullable"))):
                out[key] = copy.deepcopy(sub_schema["default"])
            if key in out and (path or key != "metadata"):
                out[key] = self.walk(out[key], sub_schema, sub)
        for key in schema.get("required") or []:
            if key not in out:
                self.error("Required", f"{path}.{key}" if path else key)
        return out

    def _array(self, value: list[Any], schema: dict[str, Any], path: str) -> list[Any]:
        items = schema.get("items")
        out = [self.walk(v, items, f"{path}[{i}]") for i, v in enumerate(value)] if isinstance(items, dict) \
            else list(value)
        if "minItems" in schema and len(out) < schema["minItems"]:
            self.error("Invalid", path, len(out), f"{path} in body should have at least {schema['minItems']} items")
        if "maxItems" in schema and len(out) > schema["maxItems"]:
            self.error("TooMany", path, len(out), f"must have at most {schema['maxItems']} items")
        # listtype/validation.go: list-type set and map must not repeat an element / a key.
        list_type = schema.get("x-kubernetes-list-type")
        if list_type in ("set", "map"):
            keys = schema.get("x-kubernetes-list-map-keys") or []
            seen: list[Any] = []
            for i, item in enumerate(out):
                if list_type == "map":
                    if not isinstance(item, dict):
                        continue
                    key = {k: item.get(k) for k in keys if k in item}
                else:
                    key = item
                if key in seen:
                    self.error("Duplicate", f"{path}[{i}]", key)
                else:
                    seen.append(key)
        return out

    def _scalar_keywords(self, value: Any, schema: dict[str, Any], path: str) -> None:
        if "enum" in schema and value not in schema["enum"]:
            self.error("NotSupported", path, value, "supported values: " + _quote_list(schema["enum"]))
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        low, high = schema.get("minimum"), schema.get("maximum")
        if number and low is not None and (value < low or (schema.get("exclusiveMinimum") and value == low)):
            op = "greater than" if schema.get("exclusiveMinimum") else "greater than or equal to"
            self.error("Invalid", path, value, f"{path} in body should be {op} {low}")
        if number and high is not None and (value > high or (schema.get("exclusiveMaximum") and value == high)):
            op = "less than" if schema.get("exclusiveMaximum") else "less than or equal to"
            self.error("Invalid", path, value, f"{path} in body should be {op} {high}")
        if isinstance(value, str):
            if "minLength" in schema and len(value) < schema["minLength"]:
                self.error("Invalid", path, value,
                           f"{path} in body should be at least {schema['minLength']} chars long")
            if "maxLength" in schema and len(value) > schema["maxLength"]:
                n = schema["maxLength"]
                self.error("TooLong", path, value, f"may not be more than {n} byte{'' if n == 1 else 's'}")
            if "pattern" in schema and not re.search(_go_pattern(schema["pattern"]), value):
                self.error("Invalid", path, value, f"{path} in body should match '{schema['pattern']}'")
            if "format" in schema and not _format_ok(schema["format"], value):
                self.error("TypeInvalid", path, value, f'{path} in body must be of type {schema["format"]}: '
                                                       f'{json.dumps(value)}')


def check_schema(value: Any, schema: dict[str, Any], path: str = "") -> tuple[Any, list[str], list[FieldError]]:
    """Prune, default and validate `value` against a structural `schema` (no CEL):
    (the value as stored, unknown field paths, errors)."""
    walker = _Walker(defaults=True)
    stored = walker.walk(value, schema, path)
    return stored, sorted(walker.unknown), walker.errors


# --- CEL (x-kubernetes-validations), evaluated with cel-python ---------------------------------------------

_CEL_ENV: Any = None


@cache
def _cel_program(rule: str) -> Any:
    global _CEL_ENV
    import celpy

    if _CEL_ENV is None:
        _CEL_ENV = celpy.Environment()
    return _CEL_ENV.program(_CEL_ENV.compile(rule))


def cel_compiles(rule: str) -> bool:
    try:
        _cel_program(rule)
    except Exception:
        return False
    return True


def _has_cel(schema: dict[str, Any]) -> bool:
    if schema.get("x-kubernetes-validations"):
        return True
    subs = [*(schema.get("properties") or {}).values(), schema.get("items"), schema.get("additionalProperties")]
    return any(_has_cel(sub) for sub in subs if isinstance(sub, dict))


_OLD_SELF = re.compile(r"\boldSelf\b")
_MISSING = object()


def _cel_walk(value: Any, old: Any, schema: dict[str, Any], path: str, errs: list[FieldError]) -> None:
    """cel/validation.go: each rule runs with `self` = the value at its node; transition rules (`oldSelf`)
    only where an old value correlates (update, same object key / map-list key)."""
    if value is None:
        return
    for rule in schema.get("x-kubernetes-validations") or []:
        text = rule["rule"]
        transition = bool(_OLD_SELF.search(text))
        if transition and old is _MISSING:
            continue
        if not cel_compiles(text):
            continue  # listed in CEL_NOT_COVERED (checked by test_admission.py)
        _cel_check(rule, value, old, schema, path, transition, errs)
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        old_map = old if isinstance(old, dict) else {}
        for key, item in value.items():
            sub_schema = props.get(key) if key in props else (extra if isinstance(extra, dict) else None)
            if sub_schema is not None:
                _cel_walk(item, old_map.get(key, _MISSING), sub_schema, f"{path}.{key}" if path else key, errs)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        keys = schema.get("x-kubernetes-list-map-keys") or []
        old_items = old if isinstance(old, list) and schema.get("x-kubernetes-list-type") == "map" else []
        for i, item in enumerate(value):
            match: Any = _MISSING
            if keys and isinstance(item, dict):
                for candidate in old_items:
                    if isinstance(candidate, dict) and all(candidate.get(k) == item.get(k) for k in keys):
                        match = candidate
                        break
            _cel_walk(item, match, schema["items"], f"{path}[{i}]", errs)


def _cel_check(rule: dict[str, Any], value: Any, old: Any, schema: dict[str, Any], path: str, transition: bool,
               errs: list[FieldError]) -> None:
    import celpy

    text = rule["rule"]
    activation = {"self": celpy.json_to_cel(value)}
    if transition:
        activation["oldSelf"] = celpy.json_to_cel(old)
    type_name = schema.get("type") or "object"
    try:
        result = _cel_program(text).evaluate(activation)
        failure = None if not isinstance(result, celpy.CELEvalError) else result
    except celpy.CELEvalError as exc:
        failure, result = exc, None
    if failure is not None:
        # e.g. "no such key: dataDurability evaluating rule: <rule>"
        reason = failure.args[0] if failure.args else str(failure)
        missing = re.fullmatch(r"no such member in mapping: '(.*)'", str(reason))
        reason = f"no such key: {missing.group(1)}" if missing else reason
        errs.append(FieldError("Invalid", path, type_name, f"{reason} evaluating rule: {text}"))
        return
    if bool(result):
        return
    message = rule.get("message") or f"failed rule: {text}"
    field_path = path + (rule.get("fieldPath") or "")
    reason = rule.get("reason") or "FieldValueInvalid"
    if reason == "FieldValueForbidden":
        errs.append(FieldError("Forbidden", field_path, detail=message))
    elif reason == "FieldValueRequired":
        errs.append(FieldError("Required", field_path, detail=message))
    elif reason == "FieldValueDuplicate":
        errs.append(FieldError("Duplicate", field_path, type_name, message))
    else:
        errs.append(FieldError("Invalid", field_path, type_name, message))


# --- CloudNativePG webhooks ----------------------------------------------------------------------------------

CNPG_GROUP = "postgresql.cnpg.io"
PLUGIN_GROUP = "barmancloud.cnpg.io"
PROMETHEUS_GROUP = "monitoring.coreos.com"  # prometheus-operator's, CRDs stored
AZURE_POD_MONITOR = ("azmonitoring.coreos.com/v1", "PodMonitor")  # Azure Managed Prometheus', CRD not stored


def _cnpg_mutate(obj: dict[str, Any]) -> None:
    """CNPG's defaulting webhook (mcluster.cnpg.io), the one default the CRD's CEL rules depend on:
    api/v1/cluster_defaults.go (*Cluster).SetDefaults, v1.29.2 and v1.30.0: an empty
    `spec.postgresql.synchronous.dataDurability` becomes "required". Mutating webhooks run before schema
    and CEL validation, so without it the rule `self.dataDurability!='preferred' || ...` would fail with
    "no such key". The webhook's other defaults are not emulated."""
    synchronous = ((obj.get("spec") or {}).get("postgresql") or {}).get("synchronous")
    if isinstance(synchronous, dict) and not synchronous.get("dataDurability"):
        synchronous["dataDurability"] = "required"


def _cnpg_validate(obj: dict[str, Any]) -> list[FieldError]:
    """CNPG's validating webhook (vcluster.cnpg.io), only the name rule:
    internal/webhook/v1/cluster_webhook.go (*ClusterCustomValidator).validateName (v1.30.0; same rule in
    v1.29.2): the name must be a DNS-1035 label ("to avoid issues while generating services") and at most
    50 characters."""
    name = (obj.get("metadata") or {}).get("name") or ""
    errs = []
    if is_dns1035_label(name):
        errs.append(FieldError("Invalid", "metadata.name", name, "cluster name must be a valid DNS label"))
    if len(name) > 50:
        errs.append(FieldError("Invalid", "metadata.name", name,
                               "the maximum length of a cluster name is 50 characters"))
    return errs


# --- entry point -----------------------------------------------------------------------------------------------


def admit(obj: dict[str, Any], field_validation: str | None, version: str = "1.30", old: dict[str, Any] | None = None,
          *, defaults: bool = True) -> tuple[dict[str, Any], list[str]]:
    """Admit `obj` as the API server would, for a create (old=None) or an update (old = the stored object).

    `field_validation` is the request's fieldValidation: "Strict" refuses unknown fields (400 BadRequest),
    "Warn" (also the server's default, None) prunes them and warns, "Ignore" prunes silently. `version`
    picks the CloudNativePG CRDs ("1.29" or "1.30"). Returns (the object as stored, warnings); raises
    `Invalid`. With `defaults=False` the returned object is pruned but not defaulted (validation still
    sees the defaulted object, as the server does)."""
    field_validation = field_validation or WARN
    if field_validation not in (STRICT, WARN, IGNORE):
        raise Invalid(400, "BadRequest", f'fieldValidation {field_validation} is not a valid value: '
                                         "must be one of Ignore, Warn, or Strict")
    api_version, kind = obj.get("apiVersion") or "", obj.get("kind") or ""
    group = api_version.rpartition("/")[0]
    meta = obj.get("metadata") or {}
    name = meta.get("name", "") if isinstance(meta, dict) else ""
    if not api_version or not kind:
        raise Invalid(400, "BadRequest", "Object 'Kind' is missing in the request body" if not kind
                      else "Object 'apiVersion' is missing in the request body")
    schema = crd_schema(api_version, kind, version)
    warnings: list[str] = []

    if schema is None:
        if group in (CNPG_GROUP, PLUGIN_GROUP, PROMETHEUS_GROUP) or (
                kind == "PodMonitor" and (api_version, kind) != AZURE_POD_MONITOR):
            raise Invalid(404, "NotFound", "the server could not find the requested resource")
        errs = validate_object_meta(meta, group, kind)
        if (group, kind) == ("", "Service"):
            service_errs, warnings = _validate_service(obj)
            errs += service_errs
        if errs:
            raise _invalid(kind, group, name, errs)
        return copy.deepcopy(obj), warnings

    # 1. decode: prune unknown fields (refused under Strict), apply the schema's defaults
    #    (apiextensions-apiserver pkg/apiserver/schema/pruning and defaulting; metadata: schema/objectmeta).
    walker = _Walker(defaults=True)
    stored = walker.walk(copy.deepcopy(obj), schema, "")
    if isinstance(meta, dict):
        stored["metadata"] = {k: copy.deepcopy(v) for k, v in meta.items() if k in OBJECT_META_FIELDS}
        walker.unknown += [f"metadata.{k}" for k in meta if k not in OBJECT_META_FIELDS]
    unknown = sorted(walker.unknown)
    if unknown and field_validation == STRICT:
        raise Invalid(400, "BadRequest",
                      "strict decoding error: " + ", ".join(f'unknown field "{p}"' for p in unknown))
    if unknown and field_validation == WARN:
        warnings.extend(f'unknown field "{p}"' for p in unknown)

    # 2. mutating admission (CNPG's defaulting webhook), then 3. validation: ObjectMeta, schema, CEL
    #    (pkg/registry/customresource/strategy.go Validate).
    if group == CNPG_GROUP and kind == "Cluster":
        _cnpg_mutate(stored)
    errs = validate_object_meta(stored.get("metadata"), group, kind) + walker.errors
    # strategy.go hasBlockingErr: CEL rules are skipped after a wrong type, an unsupported (enum) value, a
    # missing required field, a too long string or a too long list.
    blocking = any(e.type in ("TypeInvalid", "NotSupported", "Required", "TooLong", "TooMany") for e in errs)
    if _has_cel(schema) and blocking:
        errs.append(FieldError("Invalid", "<nil>", None, "some validation rules were not checked because the "
                               "object was invalid; correct the existing errors to complete validation"))
    elif _has_cel(schema):
        # The old object is defaulted as when read from etcd, so `oldSelf == self` compares like with like.
        old_value = _MISSING if old is None else _Walker(defaults=True).walk(copy.deepcopy(old), schema, "")
        _cel_walk(stored, old_value, schema, "", errs)
    if errs:
        raise _invalid(kind, group, name, errs)

    # 4. validating admission webhooks.
    if group == CNPG_GROUP and kind == "Cluster":
        webhook_errs = _cnpg_validate(stored)
        if webhook_errs:
            raise _invalid(kind, group, name, webhook_errs,
                           prefix='admission webhook "vcluster.cnpg.io" denied the request: ')

    if not defaults:
        pruned = _Walker(defaults=False).walk(obj, schema, "")
        pruned["metadata"] = stored["metadata"]
        if group == CNPG_GROUP and kind == "Cluster":
            _cnpg_mutate(pruned)
        stored = pruned
    return stored, warnings
