#!/usr/bin/env python3
"""The KServe manifests (docker/k8s/kserve/) hold together and drive the
real binary: parsed with a real YAML parser (the npm `yaml` package of
package.json, through openapi_spec.yaml_load: the python3 on PATH may not
be Debian's, so Debian's python3-yaml is not importable everywhere), the
ServingRuntime and the InferenceService have the API versions, kinds and
fields KServe requires and point at each other; ports, probe paths,
Prometheus annotations and the model path agree; the container's args and
environment are a configuration `bnn-serve --check-config` accepts with a
model directory holding one .safetensors file, as KServe's storage
initializer lays out /mnt/models, with the model name KServe substitutes
for {{.Name}}; and the daemon started with those args serves from such a
directory: the probes' paths answer, and V2 inference answers under the
InferenceService's name.
"""
import base64
import json
import os
import re
import shutil
import sys
import tempfile
import unittest
from urllib.parse import urlparse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import daemon  # noqa: E402
from openapi_spec import yaml_load  # noqa: E402

KSERVE_DIR = os.path.join(daemon.ROOT, "docker", "k8s", "kserve")
DOCKERFILE = os.path.join(daemon.ROOT, "docker", "Dockerfile")
SPEC = os.path.join(daemon.ROOT, "openapi.yaml")
MODEL_DIR = "/mnt/models"  # where KServe's storage initializer puts storageUri
# Schemes KServe's storage initializer downloads from.
STORAGE_SCHEMES = {"s3", "gs", "https", "http", "pvc", "hdfs", "webhdfs", "hf", "oci"}
# KServe addresses /v2/models/<InferenceService name>; the runtime passes
# that name to the daemon through this template.
NAME_TEMPLATE = "{{.Name}}"


def documents():
    """{kind: document} of every YAML document under docker/k8s/kserve/."""
    out = {}
    for name in sorted(os.listdir(KSERVE_DIR)):
        if name.endswith((".yaml", ".yml")):
            for doc in yaml_load(os.path.join(KSERVE_DIR, name), all_documents=True):
                if doc.get("kind") in out:
                    raise AssertionError(f"{name}: a second {doc.get('kind')}")
                out[doc.get("kind")] = doc
    return out


def flags(args):
    """{"--flag": value} of an args list of separate flags and values."""
    out, i = {}, 0
    while i < len(args):
        if not str(args[i]).startswith("--"):
            raise AssertionError(f"args: expected a --flag at {i}, got {args[i]!r}")
        out[args[i]] = str(args[i + 1])
        i += 2
    return out


def container_env(container, cpus="2"):
    """The container's env as strings; a resourceFieldRef on limits.cpu
    becomes the CPU count it would resolve to."""
    env = {}
    for e in container.get("env", []):
        if "value" in e:
            env[e["name"]] = str(e["value"])
        else:
            ref = e["valueFrom"]["resourceFieldRef"]
            if ref["resource"] != "limits.cpu":
                raise AssertionError(f"env {e['name']}: unexpected {ref}")
            env[e["name"]] = cpus
    return env


def config_keys():
    with open(os.path.join(daemon.ROOT, "service", "config.c")) as f:
        return set(re.findall(r'^\s*\{"([a-z_]+)", CFG_', f.read(), re.M))


def image_user():
    with open(DOCKERFILE) as f:
        return re.findall(r"^USER\s+(\S+)", f.read(), re.M)[-1]


class Manifests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.docs = documents()
        cls.rt = cls.docs.get("ServingRuntime")
        cls.isvc = cls.docs.get("InferenceService")

    def container(self):
        containers = self.rt["spec"]["containers"]
        self.assertEqual(len(containers), 1)
        return containers[0]

    def test_kinds_and_versions(self):
        self.assertEqual(set(self.docs), {"ServingRuntime", "InferenceService"})
        self.assertEqual(self.rt["apiVersion"], "serving.kserve.io/v1alpha1")
        self.assertEqual(self.isvc["apiVersion"], "serving.kserve.io/v1beta1")
        for doc in self.docs.values():
            self.assertRegex(doc["metadata"]["name"], r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

    def test_serving_runtime_fields(self):
        spec = self.rt["spec"]
        self.assertIn("v2", spec["protocolVersions"])
        formats = spec["supportedModelFormats"]
        self.assertIn("bnn-safetensors", [f["name"] for f in formats])
        c = self.container()
        self.assertEqual(c["name"], "kserve-container", "KServe finds the model server by this name")
        self.assertTrue(c["image"])
        for kind in ("requests", "limits"):
            self.assertIn("cpu", c["resources"][kind])
            self.assertIn("memory", c["resources"][kind])
        sc = c["securityContext"]
        self.assertTrue(sc["runAsNonRoot"])
        self.assertEqual(str(sc["runAsUser"]), image_user().split(":")[0], "not the image's USER")
        self.assertFalse(sc["allowPrivilegeEscalation"])
        self.assertEqual(sc["capabilities"]["drop"], ["ALL"])

    def test_args_ports_probes_and_metrics_agree(self):
        c = self.container()
        args = flags(c["args"])
        self.assertEqual(args["--model"], MODEL_DIR)
        self.assertEqual(args["--model-name"], NAME_TEMPLATE, "the V2 name must be the InferenceService's")
        self.assertEqual(args["--host"], "0.0.0.0")
        port = int(args["--port"])
        self.assertEqual(port, 8080)
        self.assertEqual([p["containerPort"] for p in c["ports"]], [port], "Knative allows one port")
        self.assertEqual(c["readinessProbe"]["httpGet"]["path"], "/v2/health/ready")
        self.assertEqual(c["livenessProbe"]["httpGet"]["path"], "/v2/health/live")
        for probe in ("readinessProbe", "livenessProbe"):
            self.assertEqual(c[probe]["httpGet"]["port"], port, probe)
        ann = self.rt["spec"]["annotations"]
        self.assertIsInstance(ann["prometheus.kserve.io/port"], str, "annotation values are strings")
        self.assertEqual(int(ann["prometheus.kserve.io/port"]), port, "/metrics shares the serving port")
        self.assertEqual(ann["prometheus.kserve.io/path"], "/metrics")
        self.assertIn("/metrics", yaml_load(SPEC)["paths"])

    def test_inference_service_uses_the_runtime(self):
        pred = self.isvc["spec"]["predictor"]
        model = pred["model"]
        self.assertEqual(model["runtime"], self.rt["metadata"]["name"])
        self.assertIn(model["modelFormat"]["name"], [f["name"] for f in self.rt["spec"]["supportedModelFormats"]])
        self.assertEqual(model["protocolVersion"], "v2")
        self.assertIn(model["protocolVersion"], self.rt["spec"]["protocolVersions"])
        uri = urlparse(model["storageUri"])
        self.assertIn(uri.scheme, STORAGE_SCHEMES, model["storageUri"])
        self.assertTrue(uri.netloc or uri.path, model["storageUri"])

    def test_scaling(self):
        """HPA on CPU needs the Standard (raw Deployment) mode; Knative's KPA
        cannot scale on CPU."""
        pred = self.isvc["spec"]["predictor"]
        ann = self.isvc["metadata"].get("annotations", {})
        self.assertLessEqual(pred["minReplicas"], pred["maxReplicas"])
        if pred.get("scaleMetric") in ("cpu", "memory"):
            self.assertIn(ann.get("serving.kserve.io/deploymentMode"), ("RawDeployment", "Standard"))
            self.assertEqual(ann.get("serving.kserve.io/autoscalerClass", "hpa"), "hpa")
            self.assertGreaterEqual(pred["minReplicas"], 1, "HPA does not scale to zero")
        drain = int(container_env(self.container())["BNN_SERVE_DRAIN_TIMEOUT"])
        self.assertGreater(pred["terminationGracePeriodSeconds"], drain)

    def test_env_names_are_configuration_keys(self):
        for name in container_env(self.container()):
            self.assertTrue(name.startswith("BNN_SERVE_"), name)
            self.assertIn(name[len("BNN_SERVE_"):].lower(), config_keys(), name)


class RealBinary(unittest.TestCase):
    """The runtime's args against build/bnn-serve, with /mnt/models replaced
    by a temporary directory holding one .safetensors file."""

    @classmethod
    def setUpClass(cls):
        docs = documents()
        cls.container = docs["ServingRuntime"]["spec"]["containers"][0]
        cls.name = docs["InferenceService"]["metadata"]["name"]
        cls.tmp = tempfile.TemporaryDirectory(prefix="bnn-kserve-")
        cls.model_dir = os.path.join(cls.tmp.name, "models")
        os.makedirs(cls.model_dir)
        shutil.copy(daemon.model_path(), os.path.join(cls.model_dir, "mnist-bnn.safetensors"))
        cls.env = {k: v for k, v in os.environ.items() if not k.startswith("BNN_SERVE_")}
        cls.env.update(container_env(cls.container))

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def args(self, **replace):
        """The manifest's args as KServe passes them ({{.Name}} replaced by
        the InferenceService's name), values of the named flags replaced."""
        a = {k: v.replace(NAME_TEMPLATE, self.name) for k, v in flags(self.container["args"]).items()}
        for flag, value in replace.items():
            a["--" + flag] = value
        return [x for kv in a.items() for x in kv]

    def test_check_config_accepts_the_args(self):
        p = daemon.run_server("--check-config", *self.args(model=self.model_dir), env=self.env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"(?m)^host = 0\.0\.0\.0$")
        self.assertRegex(p.stdout, r"(?m)^port = 8080$")
        self.assertRegex(p.stdout, r"(?m)^workers = 2$")
        self.assertRegex(p.stdout, r"(?m)^model_name = %s$" % re.escape(self.name))
        self.assertIn(self.model_dir, p.stdout)

    def test_check_config_refuses_a_wrong_flag(self):
        """The check above can fail: an unknown flag is exit 2."""
        p = daemon.run_server("--check-config", *self.args(model=self.model_dir), "--model-dir", "x", env=self.env)
        self.assertEqual(p.returncode, 2, p.stdout[-300:])

    def test_check_config_refuses_the_unsubstituted_template(self):
        """The name check can fail: {{.Name}} itself is no model name."""
        a = [x.replace(self.name, NAME_TEMPLATE) if x == self.name else x for x in self.args(model=self.model_dir)]
        p = daemon.run_server("--check-config", *a, env=self.env)
        self.assertEqual(p.returncode, 2, p.stdout[-300:])
        self.assertIn("model_name", p.stderr)

    # main.c resolves --model through model_path_resolve (service/model_path.h).
    def test_daemon_serves_from_a_model_directory(self):
        args = self.args(model=self.model_dir, host="127.0.0.1", port="0")
        with daemon.Daemon(*args, model=self.model_dir, env=self.env) as d:
            status, _, body = d.get("/metrics")
            self.assertEqual(status, 200)
            self.assertIn(b"bnn_ready 1", body)
            # The probes KServe runs answer on their paths.
            for probe, doc in (("readinessProbe", {"ready": True}), ("livenessProbe", {"live": True})):
                status, _, body = d.get(self.container[probe]["httpGet"]["path"])
                self.assertEqual((status, json.loads(body)), (200, doc), probe)
            # V2 under the InferenceService's name, as KServe routes it.
            status, _, body = d.get("/v2/models/%s/ready" % self.name)
            self.assertEqual((status, json.loads(body)), (200, {"name": self.name, "ready": True}))
            png, label = daemon.mnist_png(0)
            request = {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1],
                                   "data": [base64.b64encode(png).decode()]}],
                       "parameters": {"samples": 20}, "outputs": [{"name": "prediction"}]}
            status, _, body = d.post_json("/v2/models/%s/infer" % self.name, request)
            self.assertEqual(status, 200, body)
            doc = json.loads(body)
            self.assertEqual(doc["model_name"], self.name)
            if daemon.real_weights():
                self.assertEqual(doc["outputs"][0]["data"], [label])
            status, _, _ = d.get("/v2/models/mnist-bnn-other/ready")
            self.assertEqual(status, 404)


if __name__ == "__main__":
    daemon.main()
