"""Users never reach each other's objects (`api-v2.md` sections 0.6, 4-9, 11).

Alice owns a project with a dataset (with images), a workflow with a workflow
task, a job, a private task group with a task and a task-group activity. Bob,
active and verified, owns the same kind of objects and tries every route of
the application on Alice's ones.

The routes come from `app.url_map`: a route with a path parameter is checked
according to the object its first parameter addresses (see `FIRST_PARAMETER`),
so new routes are covered without touching this file. A route whose first
parameter is unknown here makes `test_every_route_with_a_parameter_is_covered`
fail until it is added, or listed in `NOT_APPLICABLE` with a reason.
"""
import dataclasses
import re
from urllib.parse import urlencode

import pytest

from fractal_server.auth.current_user import Access
from fractal_server.db import db
from fractal_server.db.models import JobV2, TaskGroupActivityV2

from .factories import (
    add_workflow_task,
    create_job,
    create_project,
    create_task,
    create_task_group,
    create_user_group,
    create_workflow,
)

PARAMETER = re.compile(r"<(?:\w+:)?(\w+)>")
NOT_APPLICABLE = {
    "/static/<path:filename>": "Flask's static files: no object of any user",
}
FORBIDDEN = {"detail": "Forbidden"}
MARKER = "alice"
"""Every name, path and e-mail of Alice's objects contains it; Bob's never do."""

# Query and body that pass request validation, so that the access checks
# (which come after validation) are what answers. `{name}` is replaced by the
# id of the object of that kind used in the request.
REQUEST_INPUTS = {
    ("PATCH", "/api/v2/project/<project_id>/"): ({}, {}),
    ("POST", "/api/v2/project/<project_id>/dataset/"): ({}, {"name": "ds", "zarr_dir": "/bob/new"}),
    ("PATCH", "/api/v2/project/<project_id>/dataset/<dataset_id>/"): ({}, {}),
    ("POST", "/api/v2/project/<project_id>/dataset/import/"): ({}, {"name": "ds", "zarr_dir": "/bob/imp"}),
    ("POST", "/api/v2/project/<project_id>/dataset/<dataset_id>/images/"): ({}, {"zarr_url": "/bob/x/new"}),
    ("PATCH", "/api/v2/project/<project_id>/dataset/<dataset_id>/images/"): ({}, {"zarr_url": "/bob/x/a"}),
    ("DELETE", "/api/v2/project/<project_id>/dataset/<dataset_id>/images/"): ({"zarr_url": "/bob/x/a"}, None),
    ("POST", "/api/v2/project/<project_id>/workflow/"): ({}, {"name": "wf-new"}),
    ("PATCH", "/api/v2/project/<project_id>/workflow/<workflow_id>/"): ({}, {}),
    ("POST", "/api/v2/project/<project_id>/workflow/import/"): ({}, {"name": "wf-imp", "task_list": []}),
    ("POST", "/api/v2/project/<project_id>/workflow/<workflow_id>/wftask/"): ({"task_id": "{task_id}"}, {}),
    ("PATCH", "/api/v2/project/<project_id>/workflow/<workflow_id>/wftask/<workflow_task_id>/"): ({}, {}),
    ("POST", "/api/v2/project/<project_id>/job/submit/"): (
        {"dataset_id": "{dataset_id}", "workflow_id": "{workflow_id}"},
        {},
    ),
    ("GET", "/api/v2/project/<project_id>/status/"): (
        {"dataset_id": "{dataset_id}", "workflow_id": "{workflow_id}"},
        None,
    ),
    ("PATCH", "/api/v2/task/<task_id>/"): ({}, {}),
    ("PATCH", "/api/v2/task-group/<task_group_id>/"): ({}, {}),
}
STOP_ROUTE = ("GET", "/api/v2/project/<project_id>/job/<job_id>/stop/")
LOCAL_STOP = "Stopping a job execution is not implemented for FRACTAL_RUNNER_BACKEND=local."


# How Bob is refused when the first foreign id of a request is Alice's
# object of that kind: (status, detail(ids, method)), `ids` being the ids of
# the request.
FIRST_PARAMETER = {
    "project_id": lambda ids, method: (403, f"Not allowed on project {ids['project_id']}"),
    "task_id": lambda ids, method: (
        403,
        [
            f"Current user has no {'read' if method in ('GET', 'use') else 'full'} access "
            f"to TaskGroupV2 {ids['task_group_id']}."
        ],
    ),
    "task_group_id": lambda ids, method: (
        403,
        [
            f"Current user has no {'read' if method == 'GET' else 'full'} access "
            f"to TaskGroupV2 {ids['task_group_id']}."
        ],
    ),
    "task_group_activity_id": lambda ids, method: (
        403,
        [f"You are not the owner of TaskGroupActivityV2 {ids['task_group_activity_id']}"],
    ),
}
# ... and when Bob's own project (or workflow) is combined with Alice's child object.
CHILD_PARAMETER = {
    "dataset_id": lambda ids: f"Invalid project_id={ids['project_id']} for dataset_id={ids['dataset_id']}",
    "workflow_id": lambda ids: f"Invalid project_id={ids['project_id']} for workflow_id={ids['workflow_id']}.",
    "workflow_task_id": lambda ids: (
        f"Invalid workflow_id={ids['workflow_id']} for workflow_task_id={ids['workflow_task_id']}"
    ),
    "job_id": lambda ids: f"Invalid project_id={ids['project_id']} for job_id={ids['job_id']}",
}
# Answers that do not depend on whose object it is.
FIXED_ANSWERS = {
    ("DELETE", "/api/v2/task/<task_id>/"): (
        405,
        "Cannot delete single tasks, please operate directly on task groups.",
    ),
}


@dataclasses.dataclass
class Route:
    method: str
    rule: str
    access: Access

    @property
    def parameters(self) -> list[str]:
        return PARAMETER.findall(self.rule)

    def inputs(self) -> tuple[dict, object]:
        query, body = REQUEST_INPUTS.get((self.method, self.rule), ({}, None))
        return query, body

    def ordered_ids(self) -> list[tuple[str, bool]]:
        """(name, is_query) of every id of a request, in the order the server checks them."""
        query, _ = self.inputs()
        in_query = [name for name, value in query.items() if value == f"{{{name}}}"]
        return [(name, False) for name in self.parameters] + [(name, True) for name in in_query]

    def url(self, ids: dict) -> str:
        path = PARAMETER.sub(lambda match: str(ids[match.group(1)]), self.rule)
        query, _ = self.inputs()
        values = {key: str(value).format(**ids) for key, value in query.items()}
        return path + (f"?{urlencode(values)}" if values else "")


def all_routes(app) -> list[Route]:
    found = []
    for rule in app.url_map.iter_rules():
        spec = getattr(app.view_functions[rule.endpoint], "endpoint_spec", None)
        if rule.rule in NOT_APPLICABLE:
            continue
        assert spec is not None, f"{rule} is not declared with fractal_server.http.routing.endpoint"
        found.append(Route(spec.method, rule.rule, spec.access))
    return sorted(found, key=lambda route: (route.rule, route.method))


def call(client, route: Route, ids: dict, headers):
    _, body = route.inputs()
    kwargs = {"headers": headers}
    if body is not None:
        kwargs["json"] = body
    return client.open(route.url(ids), method=route.method, **kwargs)


# --- The two users and their objects -----------------------------------------


def populate(app, client, headers, user_id, who: str, tmp_path) -> dict:
    """Objects of every kind owned by the user; returns their ids by parameter name."""
    project_id = create_project(client, headers, f"{who}-project")
    response = client.post(
        f"/api/v2/project/{project_id}/dataset/",
        json={"name": f"{who}-dataset", "zarr_dir": f"/{who}/zarr"},
        headers=headers,
    )
    assert response.status_code == 201, response.json
    dataset_id = response.json["id"]
    for name in ("a", "b"):
        response = client.post(
            f"/api/v2/project/{project_id}/dataset/{dataset_id}/images/",
            json={"zarr_url": f"/{who}/zarr/{name}", "attributes": {"owner": who}},
            headers=headers,
        )
        assert response.status_code == 201, response.json
    task_group_id = create_task_group(app, user_id, pkg_name=f"{who}-pkg", version="1")
    task_id = create_task(app, task_group_id, name=f"{who}-task", type="compound")
    workflow_id = create_workflow(client, headers, project_id, f"{who}-workflow")
    workflow_task_id = add_workflow_task(client, headers, project_id, workflow_id, task_id)["id"]
    job_dir = tmp_path / f"{who}-job"
    job_dir.mkdir()
    (job_dir / "workflow.log").write_text(f"{who} log\n")
    job_id = create_job(app, project_id, workflow_id, dataset_id=dataset_id, status="submitted")
    with app.app_context():
        job = db.session.get(JobV2, job_id)
        job.working_dir = job.working_dir_user = str(job_dir)
        job.user_email = f"{who}@example.org"
        activity = TaskGroupActivityV2(
            user_id=user_id, taskgroupv2_id=task_group_id, pkg_name=f"{who}-pkg", version="1",
            status="OK", action="collect", log=f"{who} collected",
        )
        db.session.add(activity)
        db.session.commit()
        activity_id = activity.id
    return {
        "project_id": project_id,
        "dataset_id": dataset_id,
        "workflow_id": workflow_id,
        "workflow_task_id": workflow_task_id,
        "job_id": job_id,
        "task_group_id": task_group_id,
        "task_id": task_id,
        "task_group_activity_id": activity_id,
    }


@pytest.fixture
def world(app, client, make_user, tmp_path):
    alice_id, alice = make_user("alice@example.org", is_verified=True)
    bob_id, bob = make_user("bob@example.org", is_verified=True)
    alice_ids = populate(app, client, alice, alice_id, "alice", tmp_path)
    bob_ids = populate(app, client, bob, bob_id, "bob", tmp_path)
    # A task group that Alice shares with a group Bob is not in.
    alice_group = create_user_group(app, "alice-team", [alice_id])
    shared_group_id = create_task_group(app, alice_id, pkg_name="alice-shared", user_group_id=alice_group)
    shared_task_id = create_task(app, shared_group_id, name="alice-shared-task")
    return {
        "alice": alice,
        "bob": bob,
        "alice_ids": alice_ids,
        "bob_ids": bob_ids,
        "alice_hidden": {"task_group_id": [shared_group_id], "task_id": [shared_task_id]},
        "alice_dir": tmp_path / "alice-job",
    }


def alice_snapshot(client, world) -> dict:
    """Everything Alice can see of her objects."""
    ids, headers = world["alice_ids"], world["alice"]
    project = f"/api/v2/project/{ids['project_id']}"
    paths = [
        f"{project}/",
        f"{project}/dataset/{ids['dataset_id']}/",
        f"{project}/workflow/{ids['workflow_id']}/",
        f"{project}/workflow/{ids['workflow_id']}/wftask/{ids['workflow_task_id']}/",
        f"{project}/job/{ids['job_id']}/",
        f"/api/v2/task-group/{ids['task_group_id']}/",
        f"/api/v2/task/{ids['task_id']}/",
        f"/api/v2/task-group/activity/{ids['task_group_activity_id']}/",
    ]
    snapshot = {}
    for path in paths:
        response = client.get(path, headers=headers)
        assert response.status_code == 200, (path, response.json)
        snapshot[path] = response.json
    response = client.post(f"{project}/dataset/{ids['dataset_id']}/images/query/", headers=headers)
    snapshot["images"] = response.json
    snapshot["files"] = sorted(path.name for path in world["alice_dir"].iterdir())
    return snapshot


def expected_answer(route: Route, ids: dict, foreign: str) -> tuple[int, object]:
    """How Bob is refused when `foreign` is the first of Alice's ids in his request."""
    if (route.method, route.rule) in FIXED_ANSWERS:
        return FIXED_ANSWERS[(route.method, route.rule)]
    if foreign in CHILD_PARAMETER:
        return 422, CHILD_PARAMETER[foreign](ids)
    in_query = dict(route.ordered_ids())[foreign]
    return FIRST_PARAMETER[foreign](ids, "use" if in_query else route.method)


def requests_for(route: Route, world) -> list[tuple[dict, str]]:
    """(ids, first foreign parameter) of each request Bob makes on the route.

    First all ids are Alice's; then Bob's own ids replace Alice's ones from the
    left, one more each time (his project with her dataset, his project and
    workflow with her workflow task, ...).
    """
    names = [name for name, _ in route.ordered_ids()]
    found = []
    for mine in range(len(names)):
        ids = {**world["bob_ids"]}
        ids.update({name: world["alice_ids"][name] for name in names[mine:]})
        if "task_id" in names[mine:]:
            ids["task_group_id"] = world["alice_ids"]["task_group_id"]
        found.append((ids, names[mine]))
    return found


# --- Tests ----------------------------------------------------------------------


def test_every_route_with_a_parameter_is_covered(app):
    uncovered = []
    for route in all_routes(app):
        if route.access is Access.SUPERUSER or (route.method, route.rule) in FIXED_ANSWERS:
            continue
        for name, _ in route.ordered_ids():
            if name not in FIRST_PARAMETER and name not in CHILD_PARAMETER:
                uncovered.append(f"{route.method} {route.rule}: {name}")
        if route.ordered_ids() and route.ordered_ids()[0][0] not in FIRST_PARAMETER:
            uncovered.append(f"{route.method} {route.rule}: starts with a child parameter")
    assert uncovered == []
    for key in [*REQUEST_INPUTS, *FIXED_ANSWERS, STOP_ROUTE]:
        assert key in [(route.method, route.rule) for route in all_routes(app)], f"stale entry {key}"


def test_bob_is_refused_on_every_route_to_alice_objects(app, client, world):
    before = alice_snapshot(client, world)
    mismatches = []
    checked = 0
    for route in all_routes(app):
        if route.access is Access.SUPERUSER or (route.method, route.rule) == STOP_ROUTE:
            continue
        for ids, foreign in requests_for(route, world):
            response = call(client, route, ids, world["bob"])
            expected = expected_answer(route, ids, foreign)
            got = (response.status_code, response.json and response.json.get("detail"))
            checked += 1
            if got != expected:
                mismatches.append(f"{route.method} {route.url(ids)}: {got} != {expected}")
    assert mismatches == []
    assert checked > 50
    assert alice_snapshot(client, world) == before


def test_stop_is_refused_whatever_the_backend(app, client, world, monkeypatch):
    route = Route(*STOP_ROUTE, Access.ACTIVE)
    requests = requests_for(route, world)
    for ids, _ in requests:
        response = call(client, route, ids, world["bob"])
        assert (response.status_code, response.json["detail"]) == (422, LOCAL_STOP)
    state = app.extensions["fractal"]
    monkeypatch.setattr(state, "backend", dataclasses.replace(state.backend, supports_stop=True))
    for ids, foreign in requests:
        response = call(client, route, ids, world["bob"])
        assert (response.status_code, response.json["detail"]) == expected_answer(route, ids, foreign)
    assert not (world["alice_dir"] / "shutdown").exists()
    # Alice herself can stop her job, with such a backend.
    response = call(client, route, world["alice_ids"], world["alice"])
    assert response.status_code == 202
    assert (world["alice_dir"] / "shutdown").exists()


def test_superuser_routes_are_forbidden_to_bob(app, client, world):
    ids = {**world["alice_ids"], "user_id": 1, "group_id": 1}
    for route in all_routes(app):
        if route.access is not Access.SUPERUSER:
            continue
        url = PARAMETER.sub(lambda match: str(ids[match.group(1)]), route.rule)
        response = client.open(url, method=route.method, headers=world["bob"])
        assert (response.status_code, response.json) == (403, FORBIDDEN), f"{route.method} {url}"


LISTINGS = {
    "/api/v2/project/": "project_id",
    "/api/v2/dataset/": "dataset_id",
    "/api/v2/workflow/": "workflow_id",
    "/api/v2/job/": "job_id",
    "/api/v2/task/": "task_id",
    "/api/v2/task-group/": "task_group_id",
    "/api/v2/task-group/?only_owner=true": "task_group_id",
    "/api/v2/task-group/?only_active=true": "task_group_id",
    "/api/v2/task-group/activity/": "task_group_activity_id",
}


@pytest.mark.parametrize("path", LISTINGS)
def test_listings_show_only_bob_objects(client, world, path):
    kind = LISTINGS[path]
    response = client.get(path, headers=world["bob"])
    assert response.status_code == 200
    listed = [item["id"] for item in response.json]
    assert world["bob_ids"][kind] in listed
    assert world["alice_ids"][kind] not in listed
    for hidden in world["alice_hidden"].get(kind, []):
        assert hidden not in listed
    assert MARKER not in response.text
    if kind == "task_group_id":
        tasks = [task["id"] for group in response.json for task in group["task_list"]]
        assert world["alice_ids"]["task_id"] not in tasks


def test_activity_filters_do_not_reach_alice(client, world):
    alice_ids = world["alice_ids"]
    for query in (
        f"task_group_activity_id={alice_ids['task_group_activity_id']}",
        f"taskgroupv2_id={alice_ids['task_group_id']}",
        "pkg_name=alice",
    ):
        response = client.get(f"/api/v2/task-group/activity/?{query}", headers=world["bob"])
        assert (response.status_code, response.json) == (200, []), query


def test_no_listing_of_bob_mentions_alice(app, client, world):
    """Every route Bob can GET without parameters: nothing of Alice's shows up."""
    bob_ids = world["bob_ids"]
    project = f"/api/v2/project/{bob_ids['project_id']}"
    paths = [
        route.rule for route in all_routes(app)
        if route.method == "GET" and not route.parameters and route.access is not Access.SUPERUSER
    ]
    paths += [
        f"{project}/dataset/",
        f"{project}/workflow/",
        f"{project}/job/",
        f"{project}/workflow/{bob_ids['workflow_id']}/job/",
    ]
    assert "/api/v2/project/" in paths
    for path in paths:
        response = client.get(path, headers=world["bob"])
        assert response.status_code == 200, path
        assert MARKER not in response.text, path


def test_bob_cannot_import_alice_private_task(client, world):
    """Workflow import only finds tasks Bob can read."""
    project_id = world["bob_ids"]["project_id"]
    for task in (
        {"pkg_name": "alice-pkg", "version": "1", "name": "alice-task"},
        {"pkg_name": "alice-shared", "version": "1.0.0", "name": "alice-shared-task"},
    ):
        response = client.post(
            f"/api/v2/project/{project_id}/workflow/import/",
            json={"name": "stolen", "task_list": [{"task": task}]},
            headers=world["bob"],
        )
        assert response.status_code == 422
        assert response.json["detail"].startswith("Could not find a task matching with")
