"""Template deployments: a template (parameters, variables, resources with dependsOn, expressions) made into
a plan of resources in dependency order, or refused with InvalidTemplate naming the place and the rule.

Pure: no store, no providers. The expression language is the reference's `[function(args).property]`
subset fabriclab knows (`_Env.functions`); a string starting with `[[` is a literal `[`.
"""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

from fabric.core.errors import ArmError

VM_TYPE = "Microsoft.Compute/virtualMachines"
EXTENSION_TYPE = "Microsoft.Compute/virtualMachines/extensions"
STORAGE_TYPE = "Microsoft.Storage/storageAccounts"
VNET_TYPE = "Microsoft.Network/virtualNetworks"
NIC_TYPE = "Microsoft.Network/networkInterfaces"
TYPES = (STORAGE_TYPE, VNET_TYPE, NIC_TYPE, VM_TYPE, EXTENSION_TYPE)
PARAMETER_TYPES = ("string", "securestring", "int", "bool", "object", "secureobject", "array")
MAX_TEMPLATE_BYTES = 1024 * 1024
MAX_RESOURCES = 200


def template_error(message: str, target: str = "") -> ArmError:
    return ArmError("InvalidTemplate", f"Deployment template validation failed: '{message}'.", target)


@dataclasses.dataclass(frozen=True)
class Context:
    subscription: str
    resource_group: str
    location: str


@dataclasses.dataclass
class PlannedResource:
    key: str                 # "type/name", lower-cased: how dependsOn finds it
    type: str
    name: str                # "BlogVM" or "BlogVM/CustomScriptExtension" for an extension
    id: str
    location: str
    properties: dict[str, Any]
    depends_on: list[str]    # keys


@dataclasses.dataclass(frozen=True)
class Plan:
    resources: list[PlannedResource]      # in an order where every dependency comes first
    parameters: dict[str, Any]            # values as deployed (secure ones included: never returned)
    secure: frozenset[str]                # names of securestring/secureobject parameters


# ----- expressions -----

_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+)|(?P<id>[A-Za-z_][A-Za-z0-9_]*)|(?P<sym>[(),.\[\]]))")


class _Parser:
    def __init__(self, text: str, env: _Env, where: str) -> None:
        self.text, self.env, self.where = text, env, where
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            m = _TOKEN.match(text, pos)
            if not m or m.end() == pos:
                raise template_error(f"the expression [{text}] cannot be read at character {pos + 1}", where)
            kind = m.lastgroup or ""
            self.tokens.append((kind, m.group(kind)))
            pos = m.end()
        self.i = 0

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.i] if self.i < len(self.tokens) else ("end", "")

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if value is not None and tok[1] != value:
            raise template_error(f"the expression [{self.text}] expects '{value}' where it has "
                                 f"'{tok[1] or 'its end'}'", self.where)
        self.i += 1
        return tok

    def parse(self) -> Any:
        value = self.expr()
        if self.peek()[0] != "end":
            raise template_error(f"the expression [{self.text}] has more after its end: '{self.peek()[1]}'",
                                 self.where)
        return value

    def expr(self) -> Any:
        kind, tok = self.take()
        if kind == "str":
            value: Any = tok[1:-1].replace("''", "'")
        elif kind == "num":
            value = int(tok)
        elif kind == "id":
            self.take("(")
            args = []
            if self.peek()[1] != ")":
                args.append(self.expr())
                while self.peek()[1] == ",":
                    self.take(",")
                    args.append(self.expr())
            self.take(")")
            value = self.env.call(tok, args, self.where)
        else:
            raise template_error(f"the expression [{self.text}] has '{tok or 'nothing'}' where a value belongs",
                                 self.where)
        while self.peek()[1] in (".", "["):
            if self.take()[1] == ".":
                kind, prop = self.take()
                if kind != "id":
                    raise template_error(f"the expression [{self.text}] needs a property name after '.'",
                                         self.where)
                value = _member(value, prop, self.text, self.where)
            else:
                index = self.expr()
                self.take("]")
                value = _member(value, index, self.text, self.where)
        return value


def _member(value: Any, key: Any, text: str, where: str) -> Any:
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(key, str) and k.lower() == key.lower():
                return v
    elif isinstance(value, list) and isinstance(key, int) and 0 <= key < len(value):
        return value[key]
    raise template_error(f"the expression [{text}] reads '{key}', which the value does not have", where)


class _Env:
    def __init__(self, ctx: Context, parameters: dict[str, Any], variables: dict[str, Any]) -> None:
        self.ctx = ctx
        self.parameters = parameters
        self.variables = variables
        self.resolving: list[str] = []
        self.functions: dict[str, Callable[..., Any]] = {
            "parameters": self._parameter, "variables": self._variable, "concat": _concat,
            "resourcegroup": lambda: {"name": ctx.resource_group, "location": ctx.location,
                                      "id": f"/subscriptions/{ctx.subscription}/resourceGroups/{ctx.resource_group}"},
            "subscription": lambda: {"subscriptionId": ctx.subscription, "id": f"/subscriptions/{ctx.subscription}"},
            "resourceid": self._resource_id, "format": _format, "tolower": lambda s: str(s).lower(),
            "toupper": lambda s: str(s).upper(), "string": lambda v: v if isinstance(v, str) else json.dumps(v),
            "int": int, "uniquestring": _unique_string, "true": lambda: True, "false": lambda: False,
            "length": len, "base64": lambda s: base64.b64encode(str(s).encode()).decode(),
        }

    def call(self, name: str, args: list[Any], where: str) -> Any:
        fn = self.functions.get(name.lower())
        if fn is None:
            raise template_error(f"the template function '{name}' is not known; fabriclab knows "
                                 f"{', '.join(sorted(self.functions))}", where)
        try:
            return fn(*args)
        except ArmError:
            raise
        except (TypeError, ValueError, IndexError) as e:
            raise template_error(f"the template function '{name}' cannot take {json.dumps(args)}: {e}",
                                 where) from None

    def _parameter(self, name: str) -> Any:
        for k, v in self.parameters.items():
            if k.lower() == str(name).lower():
                return v
        raise template_error(f"the template parameter '{name}' is not found; the template defines "
                             f"{', '.join(self.parameters) or 'none'}")

    def _variable(self, name: str) -> Any:
        for k, v in self.variables.items():
            if k.lower() == str(name).lower():
                if k in self.resolving:
                    raise template_error(f"the template variable '{k}' refers to itself")
                self.resolving.append(k)
                try:
                    return evaluate(v, self, f"variables.{k}")
                finally:
                    self.resolving.pop()
        raise template_error(f"the template variable '{name}' is not found")

    def _resource_id(self, *parts: str) -> str:
        args = [str(p) for p in parts]
        rg = self.ctx.resource_group
        if args and "/" not in args[0] and len(args) >= 3:
            rg, args = args[0], args[1:]
        if not args or "/" not in args[0]:
            raise ValueError("resourceId needs a resource type like Microsoft.Compute/virtualMachines")
        return resource_id(self.ctx.subscription, rg, args[0], args[1:])


def resource_id(sub: str, rg: str, type_: str, names: list[str]) -> str:
    ns, *types = type_.split("/")
    if len(types) != len(names):
        raise ValueError(f"the type {type_} needs {len(types)} name(s), got {len(names)}")
    path = "/".join(f"{t}/{n}" for t, n in zip(types, names))
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{ns}/{path}"


def _concat(*args: Any) -> Any:
    if args and all(isinstance(a, list) for a in args):
        return [x for a in args for x in a]
    return "".join(a if isinstance(a, str) else json.dumps(a) for a in args)


def _format(fmt: str, *args: Any) -> str:
    return re.sub(r"\{(\d+)\}", lambda m: str(args[int(m[1])]), fmt)


def _unique_string(*args: Any) -> str:
    digest = hashlib.sha256("-".join(str(a) for a in args).encode()).digest()
    return base64.b32encode(digest).decode().lower()[:13]


def evaluate(value: Any, env: _Env, where: str) -> Any:
    """Expressions in strings, everywhere in a JSON value."""
    if isinstance(value, str):
        if value.startswith("[["):
            return value[1:]
        if value.startswith("[") and value.endswith("]"):
            return _Parser(value[1:-1], env, where).parse()
        return value
    if isinstance(value, dict):
        return {k: evaluate(v, env, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [evaluate(v, env, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


# ----- the template -----

def load(text: str) -> dict[str, Any]:
    if len(text.encode()) > MAX_TEMPLATE_BYTES:
        raise ArmError("InvalidTemplate", f"The template is larger than {MAX_TEMPLATE_BYTES // 1024} KiB.", "template")
    try:
        data = json.loads(text)
    except ValueError as e:
        raise ArmError("InvalidTemplate", f"Deployment template parse failed: '{e}'.", "template") from None
    if not isinstance(data, dict):
        raise ArmError("InvalidTemplate", "Deployment template parse failed: 'the template is not a JSON object'.",
                       "template")
    return data


def _check_type(name: str, kind: str, value: Any) -> None:
    ok = {"string": str, "securestring": str, "int": int, "bool": bool, "object": dict, "secureobject": dict,
          "array": list}[kind]
    if not isinstance(value, ok) or (kind == "int" and isinstance(value, bool)):
        raise template_error(f"the value of the template parameter '{name}' is not of type '{kind}'",
                             f"parameters.{name}")


def _parameters(template: dict[str, Any], given: dict[str, Any]) -> tuple[dict[str, Any], frozenset[str]]:
    declared = template.get("parameters") or {}
    if not isinstance(declared, dict):
        raise template_error("'parameters' is not an object", "parameters")
    unknown = [k for k in given if k.lower() not in {d.lower() for d in declared}]
    if unknown:
        raise template_error(f"the template parameters '{', '.join(unknown)}' are given but not present in the "
                             f"template", f"parameters.{unknown[0]}")
    values, secure = {}, set()
    for name, spec in declared.items():
        if not isinstance(spec, dict):
            raise template_error(f"the template parameter '{name}' is not an object", f"parameters.{name}")
        kind = str(spec.get("type", "")).lower()
        if kind not in PARAMETER_TYPES:
            raise template_error(f"the template parameter '{name}' has type '{spec.get('type')}'; a type is one of "
                                 f"{', '.join(PARAMETER_TYPES)}", f"parameters.{name}.type")
        if kind.startswith("secure"):
            secure.add(name)
        match = next((v for k, v in given.items() if k.lower() == name.lower()), None)
        if match is None:
            if "defaultValue" not in spec:
                raise template_error(f"the value for the template parameter '{name}' is not provided",
                                     f"parameters.{name}")
            match = spec["defaultValue"]
        values[name] = match
    return values, frozenset(secure)


def plan(template: dict[str, Any], given: dict[str, Any], ctx: Context) -> Plan:
    """The template's resources, evaluated, checked and in dependency order; or InvalidTemplate."""
    values, secure = _parameters(template, given)
    variables = template.get("variables") or {}
    if not isinstance(variables, dict):
        raise template_error("'variables' is not an object", "variables")
    env = _Env(ctx, {}, variables)
    declared = template.get("parameters") or {}
    for name in list(values):       # a default may be an expression, e.g. [resourceGroup().location]
        values[name] = evaluate(values[name], env, f"parameters.{name}")
        spec = declared[name]
        _check_type(name, str(spec.get("type", "")).lower(), values[name])
        allowed = spec.get("allowedValues")
        if isinstance(allowed, list) and values[name] not in allowed:
            raise template_error(f"the value '{values[name]}' of the template parameter '{name}' is not one of "
                                 f"the allowed values {json.dumps(allowed)}", f"parameters.{name}")
    env.parameters = values
    raw = template.get("resources")
    if not isinstance(raw, list) or not raw:
        raise template_error("'resources' is not a non-empty list", "resources")
    flat: list[tuple[str, dict[str, Any], PlannedResource | None]] = [
        (f"resources[{i}]", r, None) for i, r in enumerate(raw)]
    resources: list[PlannedResource] = []
    raw_depends: list[tuple[PlannedResource, list[Any], str]] = []
    while flat:
        where, r, parent = flat.pop(0)
        if not isinstance(r, dict):
            raise template_error("a resource is not an object", where)
        res = evaluate({k: v for k, v in r.items() if k != "resources"}, env, where)
        type_, name = res.get("type"), res.get("name")
        if not isinstance(type_, str) or not type_ or not isinstance(name, str) or not name:
            raise template_error("a resource needs a type and a name", where)
        if parent is not None and "/" not in type_.split("/", 1)[-1] and not type_.startswith("Microsoft."):
            type_, name = f"{parent.type}/{type_}", f"{parent.name}/{name}"
        known = next((t for t in TYPES if t.lower() == type_.lower()), None)
        if known is None:
            raise ArmError("NoRegisteredProviderFound",
                           f"The resource type '{type_}' is not supported by this fabric; supported types: "
                           f"{', '.join(TYPES)}.", f"{where}.type")
        names = name.split("/")
        if len(names) != known.count("/"):
            raise template_error(f"the resource name '{name}' has {len(names)} segment(s); type '{known}' needs "
                                 f"{known.count('/')}", f"{where}.name")
        location = res.get("location") or ctx.location
        props = res.get("properties") or {}
        if not isinstance(props, dict):
            raise template_error("'properties' is not an object", f"{where}.properties")
        planned = PlannedResource(key=f"{known}/{name}".lower(), type=known, name=name,
                                  id=resource_id(ctx.subscription, ctx.resource_group, known, names),
                                  location=str(location), properties=props, depends_on=[])
        if any(p.key == planned.key for p in resources):
            raise template_error(f"the resource '{known}/{name}' is defined more than once", where)
        resources.append(planned)
        depends = res.get("dependsOn") or []
        if not isinstance(depends, list):
            raise template_error("'dependsOn' is not a list", f"{where}.dependsOn")
        raw_depends.append((planned, depends + ([parent.key] if parent is not None else []), where))
        for j, child in enumerate(r.get("resources") or []):
            flat.append((f"{where}.resources[{j}]", child, planned))
    if len(resources) > MAX_RESOURCES:
        raise template_error(f"the template has {len(resources)} resources; at most {MAX_RESOURCES}", "resources")
    for planned, depends, where in raw_depends:
        found = [_find(resources, d, f"{where}.dependsOn[{i}]") for i, d in enumerate(depends)]
        planned.depends_on = list(dict.fromkeys(found))
    return Plan(resources=_ordered(resources), parameters=values, secure=secure)


def _find(resources: list[PlannedResource], ref: Any, where: str) -> str:
    text = str(ref).lower()
    for r in resources:
        if text in (r.key, r.id.lower()):
            return r.key
    by_name = [r for r in resources if text in (r.name.lower(), r.name.lower().rsplit("/", 1)[-1])]
    if len(by_name) == 1:
        return by_name[0].key
    raise template_error(f"the resource '{ref}' is not defined in the template", where)


def _ordered(resources: list[PlannedResource]) -> list[PlannedResource]:
    """Dependency order (a depth-first walk); a cycle is refused and named."""
    by_key = {r.key: r for r in resources}
    done: list[PlannedResource] = []
    state: dict[str, str] = {}

    def visit(r: PlannedResource, path: list[str]) -> None:
        if state.get(r.key) == "done":
            return
        if state.get(r.key) == "visiting":
            cycle = path[path.index(r.key):] + [r.key]
            raise template_error("Circular dependency detected on resource: "
                                 + " -> ".join(by_key[k].type + "/" + by_key[k].name for k in cycle), "dependsOn")
        state[r.key] = "visiting"
        for d in r.depends_on:
            visit(by_key[d], path + [r.key])
        state[r.key] = "done"
        done.append(r)

    for r in resources:
        visit(r, [])
    return done
