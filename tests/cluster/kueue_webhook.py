"""What Kueue's pod webhook does to a pod of its queue, served to a real API server.

Kueue's webhook (pkg/controller/jobs/pod) gates every pod that carries the
`kueue.x-k8s.io/queue-name` label with `kueue.x-k8s.io/admission`; Kueue lifts the
gates of a pod group when it admits it. This test double is only that gate, as a
MutatingWebhookConfiguration the API server calls over TLS on loopback. It adds none of
Kueue's other marks (its `managed` label and finalizer) and creates no Workload; lifting
the gates (admission) is the test's to do.
"""

from __future__ import annotations

import base64
import json
import ssl
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from torchyard.local import pki
from torchyard.resources.kueue import ADMISSION_GATE, QUEUE_NAME

NAME = "torchyard-test-kueue-pod-webhook"


def review(request: dict[str, Any]) -> dict[str, Any]:
    """The AdmissionReview answer: the gate added to a pod of a queue, else unchanged."""
    pod = request["object"]
    answer: dict[str, Any] = {"uid": request["uid"], "allowed": True}
    if QUEUE_NAME in (pod["metadata"].get("labels") or {}):
        gates = pod["spec"].get("schedulingGates") or []
        patch = [
            {
                "op": "add",
                "path": "/spec/schedulingGates",
                "value": [*gates, {"name": ADMISSION_GATE}],
            }
        ]
        answer["patchType"] = "JSONPatch"
        answer["patch"] = base64.b64encode(json.dumps(patch).encode()).decode()
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": answer}


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        data = json.dumps(review(body["request"])).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


@contextmanager
def kueue_pod_webhook(control_plane: Any) -> Iterator[None]:
    """Serve the webhook and register it for the lifetime of the block."""
    ca = pki.new_ca("torchyard-test-webhook-ca")
    serving = pki.serving_cert(ca, "kueue-webhook", ip_addresses=("127.0.0.1",))
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = Path(tmp) / "tls.crt", Path(tmp) / "tls.key"
        cert.write_bytes(serving.cert_pem)
        key.write_bytes(serving.key_pem)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        port = server.server_address[1]
        config = {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": NAME},
            "webhooks": [
                {
                    "name": "pod.kueue.torchyard.test",
                    "admissionReviewVersions": ["v1"],
                    "sideEffects": "None",
                    "failurePolicy": "Fail",
                    "clientConfig": {
                        "url": f"https://127.0.0.1:{port}/mutate--v1-pod",
                        "caBundle": base64.b64encode(ca.cert_pem).decode(),
                    },
                    "rules": [
                        {
                            "apiGroups": [""],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE"],
                            "resources": ["pods"],
                        }
                    ],
                    "objectSelector": {
                        "matchExpressions": [{"key": QUEUE_NAME, "operator": "Exists"}]
                    },
                }
            ],
        }
        control_plane.kubectl("apply", "-f", "-", input=json.dumps(config))
        try:
            yield
        finally:
            control_plane.kubectl("delete", "mutatingwebhookconfiguration", NAME, check=False)
            server.shutdown()
