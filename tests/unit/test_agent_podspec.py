"""The node agent's translation of a pod spec into a process: env, command, identity."""

from __future__ import annotations

import pytest

from torchyard.local.agent.images import ImageConfig, accepted, local_image_config
from torchyard.local.agent.podspec import (
    ALLOW_PRIVILEGED_FLAG,
    CAPABILITY_NUMBERS,
    ConfigError,
    MissingReference,
    PodFacts,
    container_argv,
    container_env,
    expand,
    field_value,
    identity,
    named_port,
    privilege_refusals,
    quantity,
    refusal_message,
    resource_value,
    service_links,
)

FACTS = PodFacts(pod_ip="10.244.0.7", host_ip="10.244.0.1", node_name="torchyard-local")


def pod(**spec):
    return {
        "metadata": {
            "name": "trainer-0",
            "namespace": "ml",
            "uid": "u-1",
            "labels": {"app": "trainer", "tier": "gpu"},
            "annotations": {"owner": "me"},
        },
        "spec": {"serviceAccountName": "runner", **spec},
    }


def no_objects(kind, namespace, name, key):
    raise MissingReference(f'{kind.lower()} "{name}" not found')


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("$(A)-$(B)", {"A": "x", "B": "y"}, "x-y"),
        ("$(MISSING)", {}, "$(MISSING)"),
        ("$$(A)", {"A": "x"}, "$(A)"),
        ("cost: $5", {}, "cost: $5"),
        ("$(A", {"A": "x"}, "$(A"),
        ("trailing $", {}, "trailing $"),
    ],
)
def test_expand_follows_kubernetes_rules(text, env, expected):
    assert expand(text, env) == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("metadata.name", "trainer-0"),
        ("metadata.namespace", "ml"),
        ("metadata.uid", "u-1"),
        ("status.podIP", "10.244.0.7"),
        ("status.hostIP", "10.244.0.1"),
        ("spec.nodeName", "torchyard-local"),
        ("spec.serviceAccountName", "runner"),
        ("metadata.labels['tier']", "gpu"),
        ("metadata.annotations['owner']", "me"),
        ("metadata.labels", 'app="trainer"\ntier="gpu"'),
    ],
)
def test_field_refs_resolve_like_the_downward_api(path, expected):
    assert field_value(pod(), FACTS, path) == expected


def test_an_unknown_field_ref_is_a_config_error():
    with pytest.raises(ConfigError):
        field_value(pod(), FACTS, "status.phase")


def test_env_is_built_in_kubelet_order_with_expansion():
    container = {
        "name": "main",
        "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}],
        "env": [
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "URL", "value": "http://$(POD):$(CFG_port)/$(UNSET)"},
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "t"}}},
            {
                "name": "OPT",
                "valueFrom": {"configMapKeyRef": {"name": "gone", "key": "k", "optional": True}},
            },
        ],
    }
    objects = {
        ("ConfigMap", "cfg"): {"port": "8080", "bad-key!": "x"},
        ("Secret", "s"): {"t": "tok"},
    }

    def lookup(kind, namespace, name, key):
        data = objects.get((kind, name))
        if data is None:
            raise MissingReference(f"{kind} {name}")
        return data if key is None else data[key]

    env = container_env(
        pod(),
        container,
        FACTS,
        lookup,
        {"PATH": "/bin", "HOSTNAME": "h"},
        {"SVC_SERVICE_HOST": "10.0.0.9"},
    )
    assert env["PATH"] == "/bin"
    assert env["SVC_SERVICE_HOST"] == "10.0.0.9"
    assert env["CFG_port"] == "8080"
    assert "CFG_bad-key!" not in env  # not a valid variable name: skipped
    assert env["URL"] == "http://trainer-0:8080/$(UNSET)"
    assert env["TOKEN"] == "tok"
    assert "OPT" not in env


def test_a_missing_config_map_key_is_a_config_error():
    container = {
        "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}}]
    }
    with pytest.raises(MissingReference):
        container_env(pod(), container, FACTS, no_objects, {})


def test_resource_field_ref_rounds_up_and_falls_back_to_node_capacity():
    container = {"resources": {"limits": {"memory": "1Gi"}, "requests": {"cpu": "500m"}}}
    assert resource_value(container, {"resource": "requests.cpu"}, {}) == "1"
    assert resource_value(container, {"resource": "limits.memory", "divisor": "1Mi"}, {}) == "1024"
    assert resource_value(container, {"resource": "limits.cpu"}, {"cpu": "2"}) == "2"


@pytest.mark.parametrize(
    ("text", "value"), [("2Gi", 2 * 2**30), ("500m", 0.5), ("1e3", 1000), ("3", 3)]
)
def test_quantities(text, value):
    assert quantity(text) == value


def test_service_links_match_docker_link_variables():
    services = [
        {
            "metadata": {"name": "model-api"},
            "spec": {"clusterIP": "10.0.0.5", "ports": [{"name": "http", "port": 80}]},
        },
        {"metadata": {"name": "headless"}, "spec": {"clusterIP": "None", "ports": [{"port": 1}]}},
    ]
    env = service_links(services)
    assert env["MODEL_API_SERVICE_HOST"] == "10.0.0.5"
    assert env["MODEL_API_SERVICE_PORT"] == "80"
    assert env["MODEL_API_SERVICE_PORT_HTTP"] == "80"
    assert env["MODEL_API_PORT"] == "tcp://10.0.0.5:80"
    assert env["MODEL_API_PORT_80_TCP_ADDR"] == "10.0.0.5"
    assert not any(k.startswith("HEADLESS") for k in env)


@pytest.mark.parametrize(
    ("container", "expected"),
    [
        ({"command": ["python"], "args": ["-c", "$(X)"]}, ["python", "-c", "x"]),
        ({"command": ["python"]}, ["python"]),
        ({"args": ["workload", "train"]}, ["torchyard", "workload", "train"]),
        ({}, ["torchyard", "--help"]),
    ],
)
def test_command_and_args_combine_with_the_image_entrypoint(container, expected):
    image = ImageConfig(entrypoint=("torchyard",), cmd=("--help",))
    assert container_argv(container, image, {"X": "x"}) == expected


def test_no_command_anywhere_is_a_config_error():
    with pytest.raises(ConfigError, match="no command"):
        container_argv({}, ImageConfig(), {})


def test_identity_takes_the_container_over_the_pod_over_the_image():
    spec_pod = pod(
        securityContext={
            "runAsUser": 1000,
            "runAsGroup": 2000,
            "fsGroup": 3000,
            "supplementalGroups": [4000],
        }
    )
    container = {
        "securityContext": {
            "runAsUser": 1001,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        }
    }
    ident = identity(spec_pod, container, ImageConfig(user=65532, group=65532))
    assert (ident.uid, ident.gid) == (1001, 2000)
    assert ident.groups == (2000, 4000, 3000)
    assert ident.readonly_root and ident.no_new_privs
    assert ident.capabilities == ()


def test_identity_defaults_to_the_image_user():
    ident = identity(pod(), {}, ImageConfig(user=65532, group=65532))
    assert (ident.uid, ident.gid) == (65532, 65532)
    assert ident.no_new_privs is False
    assert CAPABILITY_NUMBERS["NET_BIND_SERVICE"] in (ident.capabilities or ())
    assert CAPABILITY_NUMBERS["SYS_ADMIN"] not in (ident.capabilities or ())


def test_capabilities_add_and_privileged():
    added = identity(
        pod(),
        {"securityContext": {"capabilities": {"drop": ["ALL"], "add": ["NET_ADMIN"]}}},
        ImageConfig(),
    )
    assert added.capabilities == (CAPABILITY_NUMBERS["NET_ADMIN"],)
    assert (
        identity(pod(), {"securityContext": {"privileged": True}}, ImageConfig()).capabilities
        is None
    )


def test_run_as_non_root_with_a_root_user_is_refused():
    with pytest.raises(ConfigError, match="runAsNonRoot"):
        identity(pod(securityContext={"runAsNonRoot": True}), {"name": "main"}, ImageConfig(user=0))


WORKER = ImageConfig(user=65532, group=65532)
RESTRICTED = {"runAsUser": 65532, "runAsNonRoot": True}


def worker_image(image):
    return WORKER


@pytest.mark.parametrize(
    ("spec", "refusals"),
    [
        ({"containers": [{"name": "main"}]}, []),
        ({"securityContext": RESTRICTED, "containers": [{"name": "main"}]}, []),
        (
            {"containers": [{"name": "main", "securityContext": {"privileged": True}}]},
            ['container "main" is privileged'],
        ),
        (
            {
                "containers": [{"name": "main"}],
                "volumes": [
                    {"name": "scratch", "emptyDir": {}},
                    {"name": "etc", "hostPath": {"path": "/etc"}},
                ],
            },
            ['hostPath volume "etc" (/etc)'],
        ),
        (
            {"hostNetwork": True, "hostPID": True, "hostIPC": True, "containers": [{}]},
            ["hostNetwork: true", "hostPID: true", "hostIPC: true"],
        ),
        (
            {"hostNetwork": False, "hostPID": False, "containers": [{"name": "main"}]},
            [],
        ),
        # uid 0 from the pod, from the container, from an init container
        (
            {"securityContext": {"runAsUser": 0}, "containers": [{"name": "main"}]},
            ['container "main" runs as root (uid 0)'],
        ),
        (
            {
                "securityContext": {"runAsUser": 0},
                "containers": [{"name": "main", "securityContext": {"runAsUser": 1000}}],
            },
            [],
        ),
        (
            {
                "initContainers": [{"name": "setup", "securityContext": {"runAsUser": 0}}],
                "containers": [{"name": "main"}],
            },
            ['container "setup" runs as root (uid 0)'],
        ),
        # runAsNonRoot with a root user never runs (CreateContainerConfigError)
        (
            {"securityContext": {"runAsUser": 0, "runAsNonRoot": True}, "containers": [{}]},
            [],
        ),
    ],
    ids=[
        "plain",
        "restricted",
        "privileged",
        "host-path",
        "host-namespaces",
        "host-namespaces-false",
        "pod-root",
        "container-overrides-root",
        "init-root",
        "run-as-non-root",
    ],
)
def test_privilege_refusals_name_what_reaches_the_node(spec, refusals):
    assert privilege_refusals(pod(**spec), worker_image) == refusals


def test_an_image_whose_user_is_root_is_refused_unless_the_pod_names_a_user():
    root_image = {"containers": [{"name": "main", "image": "busybox"}]}

    def images(image):
        return ImageConfig(user=0) if image == "busybox" else WORKER

    assert privilege_refusals(pod(**root_image), images) == [
        'container "main" runs as root (uid 0)'
    ]
    assert privilege_refusals(pod(securityContext={"runAsUser": 7}, **root_image), images) == []
    # an image the node refuses never runs: nothing to say about its user
    assert privilege_refusals(pod(**root_image), lambda image: None) == []


def test_the_refusal_message_names_each_refusal_and_the_flag():
    message = refusal_message(["hostNetwork: true", 'container "main" is privileged'])
    assert 'hostNetwork: true; container "main" is privileged' in message
    assert ALLOW_PRIVILEGED_FLAG in message


def test_named_ports():
    container = {"ports": [{"name": "http", "containerPort": 8080}]}
    assert named_port(container, "http") == 8080
    assert named_port(container, 9090) == 9090
    assert named_port(container, "9091") == 9091
    with pytest.raises(ConfigError):
        named_port(container, "grpc")


def test_images_are_accepted_by_name_or_pattern_and_run_the_local_python():
    assert accepted("ghcr.io/torchyard/torchyard-worker:v1", ["ghcr.io/torchyard/*"])
    assert not accepted("busybox", ["ghcr.io/torchyard/*"])
    config = local_image_config("ghcr.io/torchyard/torchyard-worker:v0.1.0", "/venv/bin")
    assert config.env["PATH"].startswith("/venv/bin:")


def test_the_local_worker_image_config_matches_the_worker_dockerfile():
    from tests.objects import REPO
    from torchyard.images import WORKER_IMAGE

    dockerfile = (REPO / "images" / "worker" / "Dockerfile").read_text()
    final_stage = dockerfile.rsplit("\nFROM ", 1)[1]
    config = local_image_config(WORKER_IMAGE, "/venv/bin")
    assert 'ENTRYPOINT ["torchyard"]' in final_stage and config.entrypoint == ("torchyard",)
    assert f"USER {config.user}:{config.group}" in final_stage
    assert f"WORKDIR {config.workdir}" in final_stage
    env_block = final_stage.split("ENV ", 1)[1].split("\nUSER", 1)[0]
    declared = dict(
        part.strip().split("=", 1) for part in env_block.replace("\\\n", " ").split() if "=" in part
    )
    declared.pop("PATH")
    assert {k: v for k, v in config.env.items() if k != "PATH"} == declared


def test_env_references_name_every_config_map_and_secret_the_environment_reads():
    from torchyard.local.agent.launch import env_references

    spec = {
        "envFrom": [{"configMapRef": {"name": "a"}}, {"secretRef": {"name": "b"}}],
        "env": [
            {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}},
            {"name": "Y", "valueFrom": {"secretKeyRef": {"name": "d", "key": "k"}}},
            {"name": "Z", "value": "plain"},
        ],
    }
    assert env_references(spec) == {
        ("ConfigMap", "a"),
        ("Secret", "b"),
        ("ConfigMap", "c"),
        ("Secret", "d"),
    }
