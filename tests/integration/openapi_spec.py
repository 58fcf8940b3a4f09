"""openapi.yaml as data for the tests: YAML parsed by the npm `yaml`
package (python has no YAML parser in its standard library; package.json
pins it), the spec itself, and a JSON Schema (2020-12) subset validator
that is enough for openapi.yaml. Used by test_openapi.py and
test_container.py. stdlib only; needs node_modules (scripts/npm-deps.sh).
"""
import json
import math
import os
import re
import subprocess

from daemon import ROOT

SPEC_PATH = os.path.join(ROOT, "openapi.yaml")


# ---- YAML through node ------------------------------------------------------

def yaml_load(path, all_documents=False):
    """Parses a YAML file with the npm `yaml` package (package.json) and
    returns the data (a list of documents when all_documents)."""
    script = (
        "const Y = require('yaml'); const fs = require('fs');"
        "const text = fs.readFileSync(process.argv[1], 'utf8');"
        "const docs = Y.parseAllDocuments(text);"
        "for (const d of docs) if (d.errors.length) { console.error(d.errors[0].message); process.exit(1); }"
        "const out = docs.map(d => d.toJS()).filter(d => d !== null);"
        "process.stdout.write(JSON.stringify(process.argv[2] === 'all' ? out : out[0]));"
    )
    if not os.path.isdir(os.path.join(ROOT, "node_modules", "yaml")):
        raise AssertionError("node_modules/yaml missing: run scripts/npm-deps.sh (npm ci)")
    p = subprocess.run(["node", "-e", script, path, "all" if all_documents else "one"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise AssertionError(f"{path}: YAML parse failed: {p.stderr.strip()}")
    return json.loads(p.stdout)


_spec = None


def spec():
    global _spec
    if _spec is None:
        _spec = yaml_load(SPEC_PATH)
    return _spec


# ---- a JSON Schema (2020-12) subset, enough for openapi.yaml -----------------

class SchemaError(AssertionError):
    pass


def resolve(root, ref):
    if not ref.startswith("#/"):
        raise SchemaError(f"only local $ref supported, got {ref}")
    node = root
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _type_ok(value, t):
    if t == "object":
        return isinstance(value, dict)
    if t == "array":
        return isinstance(value, list)
    if t == "string":
        return isinstance(value, str)
    if t == "boolean":
        return isinstance(value, bool)
    if t == "null":
        return value is None
    if t == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or \
            (isinstance(value, float) and value.is_integer())
    if t == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    raise SchemaError(f"unknown type {t}")


def validate(value, schema, root, where="$"):
    """Raises SchemaError naming the path and the rule broken."""
    if schema is True or schema == {}:
        return
    if schema is False:
        raise SchemaError(f"{where}: no value allowed")
    if "$ref" in schema:
        validate(value, resolve(root, schema["$ref"]), root, where)
    if "allOf" in schema:
        for s in schema["allOf"]:
            validate(value, s, root, where)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            ok = 0
            errors = []
            for s in schema[key]:
                try:
                    validate(value, s, root, where)
                    ok += 1
                except SchemaError as e:
                    errors.append(str(e))
            if ok == 0 or (key == "oneOf" and ok > 1):
                raise SchemaError(f"{where}: {key} matched {ok} alternatives: {errors}")
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_type_ok(value, t) for t in types):
            raise SchemaError(f"{where}: expected type {schema['type']}, got {type(value).__name__} {value!r:.80}")
    if "enum" in schema and value not in schema["enum"]:
        raise SchemaError(f"{where}: expected one of {schema['enum']}, got {value!r}")
    if "const" in schema and value != schema["const"]:
        raise SchemaError(f"{where}: expected {schema['const']!r}, got {value!r}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            raise SchemaError(f"{where}: expected >= {schema['minimum']}, got {value}")
        if "maximum" in schema and value > schema["maximum"]:
            raise SchemaError(f"{where}: expected <= {schema['maximum']}, got {value}")
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            raise SchemaError(f"{where}: expected > {schema['exclusiveMinimum']}, got {value}")
        if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
            raise SchemaError(f"{where}: expected < {schema['exclusiveMaximum']}, got {value}")
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            raise SchemaError(f"{where}: expected length >= {schema['minLength']}, got {len(value)}")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            raise SchemaError(f"{where}: expected length <= {schema['maxLength']}, got {len(value)}")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            raise SchemaError(f"{where}: {value!r} does not match {schema['pattern']}")
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            raise SchemaError(f"{where}: expected >= {schema['minItems']} items, got {len(value)}")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            raise SchemaError(f"{where}: expected <= {schema['maxItems']} items, got {len(value)}")
        if "items" in schema:
            for i, item in enumerate(value):
                validate(item, schema["items"], root, f"{where}[{i}]")
    if isinstance(value, dict):
        for name in schema.get("required", []):
            if name not in value:
                raise SchemaError(f"{where}: required member '{name}' missing")
        props = schema.get("properties", {})
        for name, v in value.items():
            if name in props:
                validate(v, props[name], root, f"{where}.{name}")
            elif "additionalProperties" in schema:
                extra = schema["additionalProperties"]
                if extra is False:
                    raise SchemaError(f"{where}: member '{name}' not allowed by the schema")
                validate(v, extra, root, f"{where}.{name}")


def response_schema(path, method, status, media_type):
    """The schema the spec gives for this answer; AssertionError when the
    spec does not document the status or the media type."""
    s = spec()
    op = s["paths"][path][method.lower()]
    resp = op["responses"].get(str(status))
    if resp is None:
        raise AssertionError(f"{method} {path}: status {status} is not documented (has {sorted(op['responses'])})")
    if "$ref" in resp:
        resp = resolve(s, resp["$ref"])
    content = resp.get("content", {})
    if media_type not in content:
        raise AssertionError(f"{method} {path} {status}: media type {media_type} not documented (has {list(content)})")
    return content[media_type].get("schema", {}), resp
