"""The rules for container request fields (compute/validation.py), as pure functions: what the
clients this project meets send passes; each malformed value is refused naming its field."""

from __future__ import annotations

from typing import Any

import pytest

from archipelago.compute.validation import check_committable, check_fields
from archipelago.errors import Unprocessable

PDH = "0123456789abcdef0123456789abcdef+12"
UUID = "z1111-4zz18-0123456789abcde"


def legit_requests() -> list[dict[str, Any]]:
    """Bodies as our clients send them: tests/support/compute.py, `archi run` (cwl/job.py and
    cwl/submit.py), `archi container run`, and arvados-cwl-runner 3.2.1 (arvcontainer.py)."""
    support = {"command": ["sh", "-c", "echo hi"], "container_image": None, "output_path": "/out", "cwd": "/out",
               "mounts": {"/out": {"kind": "tmp", "capacity": 1 << 20}},
               "runtime_constraints": {"ram": 64 << 20, "vcpus": 1}, "priority": 500, "state": "Committed"}
    cwl_step = {"command": ["wc", "-l"], "cwd": "/var/spool/cwl", "output_path": "/var/spool/cwl",
                "environment": {"HOME": "/var/spool/cwl", "TMPDIR": "/tmp"},
                "mounts": {"/var/spool/cwl": {"kind": "tmp", "capacity": 1024 << 20},
                           "/tmp": {"kind": "tmp", "capacity": 0},
                           f"/keep/{PDH}": {"kind": "collection", "portable_data_hash": PDH},
                           "/var/lib/cwl/stg1/item #1.txt": {"kind": "collection", "portable_data_hash": PDH,
                                                            "path": "dir/item #1.txt"},
                           "/var/spool/cwl/in.txt": {"kind": "collection", "portable_data_hash": PDH,
                                                     "path": "in.txt", "writable": True},
                           "/var/spool/cwl/made.txt": {"kind": "text", "content": "made"},
                           "stdin": {"kind": "collection", "portable_data_hash": PDH, "path": "lines.txt"},
                           "stdout": {"kind": "file", "path": "/var/spool/cwl/out.txt"},
                           "stderr": {"kind": "file", "path": "/var/spool/cwl/logs/err.txt"}},
                "runtime_constraints": {"ram": 256 << 20, "vcpus": 1, "API": False},
                "scheduling_parameters": {"max_run_time": 60}, "use_existing": True, "priority": 500}
    runner = {"command": ["arvados-cwl-runner", "--local", "--api=containers"], "cwd": "/var/spool/cwl",
              "output_path": "/var/spool/cwl", "output_name": "Output", "output_ttl": 0, "use_existing": False,
              "mounts": {"/var/spool/cwl": {"kind": "collection", "writable": True},
                         "/var/lib/cwl/cwl.input.json": {"kind": "json", "content": {"x": [1, {"y": None}]}},
                         "/var/lib/cwl/workflow": {"kind": "collection", "portable_data_hash": PDH, "uuid": UUID},
                         "/keep": {"kind": "keep"},
                         "stdout": {"kind": "file", "path": "/var/spool/cwl/cwl.output.json"}},
              "secret_mounts": {"/secrets/token": {"kind": "text", "content": "s3cret"}},
              "runtime_constraints": {"vcpus": 1, "ram": 1 << 30, "API": True, "keep_cache_ram": 0,
                                      "keep_cache_disk": 0, "gpu": {"device_count": 0, "stack": "",
                                                                    "driver_version": "", "hardware_target": [],
                                                                    "vram": 0}},
              "scheduling_parameters": {"partitions": ["fast"], "preemptible": False, "supervisor": True},
              "container_count_max": 1, "output_glob": ["*.txt"], "output_storage_classes": ["default"]}
    go_style = {**support, "mounts": {"/out": {"kind": "tmp", "capacity": 0, "uuid": "", "portable_data_hash": "",
                                               "writable": False, "path": "", "content": None},
                                      "/in": {"kind": "collection", "uuid": UUID, "portable_data_hash": "",
                                              "capacity": 0, "path": "", "writable": False, "content": None}}}
    return [support, cwl_step, runner, go_style]


@pytest.mark.parametrize("body", legit_requests(), ids=["support", "cwl-step", "acr-runner", "go-zero-values"])
def test_what_clients_send_is_accepted(body):
    check_fields(body)
    check_committable(body)


def refused(body: dict[str, Any], committing: bool = False) -> str:
    with pytest.raises(Unprocessable) as info:
        check_fields(body)
        if committing:
            check_committable(body)
    assert info.value.status == 422
    return str(info.value)


def with_mount(target: str, mount: Any) -> dict[str, Any]:
    return {"mounts": {"/out": {"kind": "tmp"}, target: mount}}


MALFORMED = [
    ({"runtime_constraints": {"ram": "lots"}}, "runtime_constraints.ram must be a positive integer"),
    ({"runtime_constraints": {"ram": -1}}, "runtime_constraints.ram"),
    ({"runtime_constraints": {"ram": 0}}, "runtime_constraints.ram"),
    ({"runtime_constraints": {"ram": [1 << 20, 1 << 30]}}, "runtime_constraints.ram"),  # Arvados refuses ranges
    ({"runtime_constraints": {"ram": True}}, "runtime_constraints.ram"),
    ({"runtime_constraints": {"ram": 1 << 64}}, "runtime_constraints.ram"),
    ({"runtime_constraints": {"vcpus": 0}}, "runtime_constraints.vcpus"),
    ({"runtime_constraints": {"vcpus": 1.5}}, "runtime_constraints.vcpus"),
    ({"runtime_constraints": {"keep_cache_ram": -1}}, "runtime_constraints.keep_cache_ram"),
    ({"runtime_constraints": {"API": "yes"}}, "runtime_constraints.API"),
    ({"runtime_constraints": {"rma": 1}}, "unknown rma"),
    ({"runtime_constraints": {"gpu": {"device_count": -1}}}, "runtime_constraints.gpu.device_count"),
    ({"runtime_constraints": "lots"}, "runtime_constraints must be an object"),
    ({"scheduling_parameters": {"max_run_time": -1}}, "scheduling_parameters.max_run_time"),
    ({"scheduling_parameters": {"max_run_time": "x"}}, "scheduling_parameters.max_run_time"),
    ({"scheduling_parameters": {"max_run_time": 10 ** 20}}, "scheduling_parameters.max_run_time"),
    ({"scheduling_parameters": {"partitions": "fast"}}, "scheduling_parameters.partitions"),
    ({"scheduling_parameters": {"preemptible": 1}}, "scheduling_parameters.preemptible"),
    ({"scheduling_parameters": {"priority": 1}}, "unknown priority"),
    ({"container_count_max": -1}, "container_count_max"),
    ({"container_count_max": 0}, "container_count_max"),
    ({"priority": 1001}, "priority"),
    ({"priority": -1}, "priority"),
    ({"output_ttl": -1}, "output_ttl"),
    ({"command": "echo hi"}, "command must be a list of strings"),
    ({"command": ["echo", 1]}, "command"),
    ({"command": ["echo", "a\0b"]}, "command"),
    ({"cwd": 5}, "cwd"),
    ({"environment": {"A": 1}}, "environment.A must be a string"),
    ({"environment": {"A=B": "c"}}, "environment"),
    ({"environment": {"": "c"}}, "environment"),
    ({"environment": ["A=B"]}, "environment must be an object"),
    ({"output_glob": "*.txt"}, "output_glob"),
    ({"output_path": "out"}, "output_path must be an absolute path"),
    ({"output_path": "/out/"}, "output_path must be a normalised"),
    ({"output_path": "/out/../etc"}, "output_path"),
    ({"mounts": []}, "mounts must be an object"),
    (with_mount("/in", {"kind": "collection", "uuid": 5}), "mounts./in.uuid must be a collection UUID"),
    (with_mount("/in", {"kind": "collection", "uuid": "z1111-j7d0g-0123456789abcde"}), "mounts./in.uuid"),
    (with_mount("/in", {"kind": "collection", "portable_data_hash": "abc"}), "mounts./in.portable_data_hash"),
    (with_mount("/in", {"kind": "collection", "portable_data_hash": PDH + "+K@z2222"}), "portable_data_hash"),
    (with_mount("/in", {"kind": "collection"}), "needs a portable_data_hash or a uuid"),
    (with_mount("/in", {"kind": "collection", "portable_data_hash": PDH, "path": "../x"}), "mounts./in.path"),
    (with_mount("/in", {"kind": "collection", "portable_data_hash": PDH, "path": "a/../../x"}), "mounts./in.path"),
    (with_mount("/in", {"kind": "collection", "portable_data_hash": PDH, "writable": "yes"}), "writable"),
    (with_mount("../etc", {"kind": "tmp"}), "a target of mounts"),
    (with_mount("/out/../etc", {"kind": "tmp"}), "a target of mounts"),
    (with_mount("/out/./x", {"kind": "tmp"}), "a target of mounts"),
    (with_mount("/out//x", {"kind": "tmp"}), "a target of mounts"),
    (with_mount("/out/x/", {"kind": "tmp"}), "a target of mounts"),
    (with_mount("/", {"kind": "tmp"}), "a target of mounts"),
    (with_mount("/out/x\0", {"kind": "tmp"}), "a target of mounts"),
    (with_mount("/x", {"kind": "nfs"}), "mounts./x.kind must be one of"),
    (with_mount("/x", {"path": "/etc"}), "mounts./x.kind"),
    (with_mount("/x", "tmp"), "mounts./x must be an object"),
    (with_mount("/x", {"kind": "tmp", "capacity": -1}), "mounts./x.capacity"),
    (with_mount("/x", {"kind": "tmp", "capacity": "1G"}), "mounts./x.capacity"),
    (with_mount("/x", {"kind": "tmp", "uuid": UUID}), "a tmp mount has no uuid"),
    (with_mount("/x", {"kind": "text", "content": 5}), "mounts./x.content"),
    (with_mount("/x", {"kind": "file", "path": "/out/x"}), "only for stdout and stderr"),
    (with_mount("stdout", {"kind": "tmp"}), "mounts.stdout.kind must be file"),
    (with_mount("stdout", {"kind": "file", "path": "out.txt"}), "mounts.stdout.path"),
    (with_mount("stdin", {"kind": "collection", "portable_data_hash": PDH}), "stdin"),
    (with_mount("stdin", {"kind": "tmp"}), "stdin"),
    (with_mount("stdlog", {"kind": "tmp"}), "a target of mounts"),
    ({"secret_mounts": {"/s": {"kind": "collection", "portable_data_hash": PDH}}}, "secret_mounts./s.kind"),
    ({"secret_mounts": {"stdout": {"kind": "text", "content": "x"}}}, "a target of secret_mounts"),
]


@pytest.mark.parametrize(("body", "named"), MALFORMED, ids=[str(i) for i in range(len(MALFORMED))])
def test_a_malformed_field_is_refused_naming_it(body, named):
    assert named in refused(body)


def test_a_percent_encoded_dot_dot_is_just_a_name():
    check_fields(with_mount("/out/%2e%2e", {"kind": "tmp"}))


ACROSS = [
    ({"command": [], "output_path": "/out", "mounts": {"/out": {"kind": "tmp"}}}, "needs a command"),
    ({"command": ["true"], "mounts": {"/out": {"kind": "tmp"}}}, "needs an output_path"),
    ({"command": ["true"], "output_path": "/elsewhere", "mounts": {"/out": {"kind": "tmp"}}},
     "must be a mount target or inside one"),
    ({"command": ["true"], "output_path": "/outside", "mounts": {"/out": {"kind": "tmp"}}}, "mount target"),
    ({"command": ["true"], "output_path": "/out", "mounts": {"/out": {"kind": "tmp"},
                                                           "stdout": {"kind": "file", "path": "/etc/passwd"}}},
     "mounts.stdout.path"),
    ({"command": ["true"], "output_path": "/out", "mounts": {"/out": {"kind": "tmp"},
                                                           "stderr": {"kind": "file", "path": "/out"}}},
     "mounts.stderr.path"),
    ({"command": ["true"], "output_path": "/out", "mounts": {"/out": {"kind": "tmp"}},
      "secret_mounts": {"/out": {"kind": "text", "content": "x"}}}, "both mount /out"),
]


@pytest.mark.parametrize(("body", "named"), ACROSS, ids=[str(i) for i in range(len(ACROSS))])
def test_a_request_that_cannot_run_is_refused_at_commit(body, named):
    assert named in refused(body, committing=True)


def test_an_output_path_inside_a_mount_is_mounted():
    check_committable({"command": ["true"], "output_path": "/work/out", "mounts": {"/work": {"kind": "tmp"}}})


@pytest.mark.parametrize("field", ["name", "description", "container_image", "output_name", "cwd", "runtime_token"])
def test_a_nul_in_a_text_field_is_refused(field):
    assert field in refused({field: "a\0b"})
