"""Manifests and the tasks built from them (`task-collection.md` 5-6), without environments."""
import pytest
from pydantic import ValidationError

from fractal_server.task_collection.hosts import LocalTaskHost
from fractal_server.task_collection.manifest import (
    Manifest,
    ManifestError,
    check_task_scripts_exist,
    read_manifest,
    tasks_from_manifest,
)
from fractal_server.task_collection.packages import (
    InvalidWheelName,
    install_requirement,
    normalize_package_name,
    parse_wheel_name,
)
from fractal_server.task_collection.venv import InstalledPackage, StepFailed

from .helpers import mock_manifest


def errors(data) -> list[tuple]:
    with pytest.raises(ValidationError) as info:
        Manifest.model_validate(data)
    return [(error["loc"], error["msg"]) for error in info.value.errors()]


def manifest(*tasks, **fields) -> dict:
    return {"manifest_version": "2", "task_list": list(tasks), **fields}


def test_the_mock_manifest_is_valid():
    parsed = Manifest.model_validate(mock_manifest())
    assert parsed.authors == "Fractal test suite"
    assert parsed.task_list[0].meta_non_parallel == {}


@pytest.mark.parametrize(
    "data, expected",
    [
        (manifest(manifest_version="1"), "Wrong manifest version (given 1)"),
        (manifest({"name": "t"}), "Task 't': `executable_non_parallel` and `executable_parallel` cannot be both None."),
        (manifest({"name": "t", "executable_parallel": "p.py", "meta_non_parallel": {"a": 1}}),
         "Task 't': `meta_non_parallel` must be empty without `executable_non_parallel`."),
        (manifest({"name": "t", "executable_non_parallel": "n.py", "args_schema_parallel": {}}),
         "Task 't': `args_schema_parallel` must be null without `executable_parallel`."),
        (manifest({"name": "t", "executable_non_parallel": "a.py"}, {"name": "t", "executable_parallel": "b.py"}),
         "Task names in the manifest must be unique (repeated: t)."),
        (manifest({"name": "t", "executable_parallel": "p.py"}, has_args_schemas=True),
         "Manifest has has_args_schemas=True, but task 't' has task.args_schema_parallel=None."),
        (manifest({"name": "t", "executable_parallel": "p.py", "docs_link": "not a url"}),
         "invalid or missing URL scheme"),
        (manifest({"name": "t", "executable_parallel": "p.py"}, authors="  "), "String attribute 'authors' cannot be empty"),
    ],
)
def test_invalid_manifests(data, expected):
    assert expected in [message.removeprefix("Value error, ") for _, message in errors(data)]


def test_unknown_keys_are_ignored():
    parsed = Manifest.model_validate(manifest({"name": "t", "executable_parallel": "p.py", "new": 1}, new=2))
    assert parsed.task_list[0].name == "t"


def test_tasks_from_the_manifest():
    data = manifest(
        {"name": "both", "executable_non_parallel": "init.py", "executable_parallel": "sub/compute.py",
         "meta_parallel": {"cpus_per_task": 2}, "args_schema_parallel": {"title": "P"},
         "args_schema_non_parallel": {"title": "N"}, "tags": ["a"], "docs_link": "https://example.org/x"},
        {"name": "par", "executable_parallel": "p.py", "args_schema_parallel": {"title": "P"}},
        has_args_schemas=True, args_schema_version="pydantic_v2", authors=" Someone ",
    )
    both, par = tasks_from_manifest(
        Manifest.model_validate(data), python_bin="/venv/bin/python", package_root="/site/pkg", version="1.0"
    )
    assert both.task_type == "compound" and par.task_type == "parallel"
    assert both.command_non_parallel == "/venv/bin/python /site/pkg/init.py"
    assert both.command_parallel == "/venv/bin/python /site/pkg/sub/compute.py"
    assert (both.meta_parallel, both.meta_non_parallel) == ({"cpus_per_task": 2}, {})
    assert (par.meta_non_parallel, par.args_schema_non_parallel, par.command_non_parallel) == (None, None, None)
    assert (both.version, both.authors, both.args_schema_version) == ("1.0", "Someone", "pydantic_v2")
    assert both.docs_link == "https://example.org/x" and both.tags == ["a"]
    # Without has_args_schemas, the schema version is not kept.
    data["has_args_schemas"] = False
    (first, _) = tasks_from_manifest(Manifest.model_validate(data), python_bin="/p", package_root="/r", version=None)
    assert (first.args_schema_version, first.version) == (None, None)


def test_task_creation_rules_apply():
    data = Manifest.model_validate(manifest({"name": "t", "executable_parallel": "p.py", "tags": ["x", "x"]}))
    with pytest.raises(ManifestError, match="tags: `tags` list has repetitions"):
        tasks_from_manifest(data, python_bin="/p", package_root="/r", version=None)
    data = Manifest.model_validate(manifest({"name": "t", "executable_parallel": "p.py"}))
    with pytest.raises(ManifestError, match="Command must not contain any of this characters"):
        tasks_from_manifest(data, python_bin="/p", package_root="/weird(folder)", version=None)


def test_task_scripts_must_exist(tmp_path):
    (tmp_path / "here.py").write_text("")
    data = Manifest.model_validate(manifest({"name": "t", "executable_non_parallel": "here.py", "executable_parallel": "gone.py"}))
    tasks = tasks_from_manifest(data, python_bin="/p", package_root=str(tmp_path), version=None)
    with pytest.raises(ManifestError) as info:
        check_task_scripts_exist(LocalTaskHost(str(tmp_path)), tasks)
    assert str(info.value) == f"Task t has command_parallel pointing to missing file {tmp_path}/gone.py."


def test_read_manifest(tmp_path):
    path = tmp_path / "__FRACTAL_MANIFEST__.json"
    path.write_text("{not json")
    with pytest.raises(ManifestError, match="Cannot read the manifest"):
        read_manifest(LocalTaskHost(str(tmp_path)), str(path))
    path.write_text('{"manifest_version": "2"}')
    with pytest.raises(ManifestError, match="manifest.task_list: field required"):
        read_manifest(LocalTaskHost(str(tmp_path)), str(path))


@pytest.mark.parametrize(
    "name, expected",
    [("My_Tasks.Pkg", "my-tasks-pkg"), ("fractal_tasks_mock", "fractal-tasks-mock"), ("a--b__c", "a-b-c")],
)
def test_normalized_names(name, expected):
    assert normalize_package_name(name) == expected


def test_wheel_names():
    wheel = parse_wheel_name("/x/fractal_tasks_mock-0.0.1-py3-none-any.whl")
    assert (wheel.pkg_name, wheel.version) == ("fractal-tasks-mock", "0.0.1")
    for bad in ("/x/invalid.whl", "/x/pkg-..-py3-none-any.whl", "/x/-1.0-py3.whl", "/x/p%20q-1.0-py3.whl"):
        with pytest.raises(InvalidWheelName):
            parse_wheel_name(bad)


def test_install_requirements():
    assert install_requirement("pkg", None, "1.0") == "pkg==1.0"
    assert install_requirement("pkg", "a, b", "1.0") == "pkg[a,b]==1.0"
    assert install_requirement("/w/p-1-py3-none-any.whl", "a", None) == "/w/p-1-py3-none-any.whl[a]"


PIP_SHOW = """Name: fractal-tasks-core
Version: 1.4.3
Location: /venv/lib/python3.11/site-packages
Requires: numpy
Files:
  fractal_tasks_core-1.4.3.dist-info/RECORD
  fractal_tasks_core/__FRACTAL_MANIFEST__.json
  fractal_tasks_core/tasks/__init__.py
"""


def test_pip_show_output():
    installed = InstalledPackage.parse(PIP_SHOW, module="fractal_tasks_core")
    assert (installed.name, installed.version) == ("fractal-tasks-core", "1.4.3")
    assert str(installed.manifest_path) == "/venv/lib/python3.11/site-packages/fractal_tasks_core/__FRACTAL_MANIFEST__.json"
    several = PIP_SHOW + "  tests/__FRACTAL_MANIFEST__.json\n"
    assert InstalledPackage.parse(several, module="fractal_tasks_core").manifest_relative_path == (
        "fractal_tasks_core/__FRACTAL_MANIFEST__.json"
    )
    assert InstalledPackage.parse(PIP_SHOW.split("Files:")[0], module="x").manifest_relative_path is None
    with pytest.raises(StepFailed, match="did not print Location"):
        InstalledPackage.parse("Name: x\nVersion: 1\n", module="x")
