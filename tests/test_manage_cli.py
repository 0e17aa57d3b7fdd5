"""`pulumi-django manage`: one-off management commands and a shell, on both targets, against the
offline plan's stack state (its outputs, its task definition and service, its app containers).

AWS calls go to botocore Stubbers (which check every request against the ECS and CloudWatch
Logs models); the `aws`, `session-manager-plugin` and `docker` executables are stubs on PATH
that record how they were run.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import ANY
from path_stubs import python_executable
from release_task_stubs import Aws

from pulumi_django.cli import main, one_off
from pulumi_django.cli.commands import manage
from pulumi_django.cli.plan import Plan
from pulumi_django.cli.stack_state import DeployedStack
from pulumi_django.recorder import SECRET

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "examples" / "notebook"
TASK_ID = "feedfacecafe0123456789abcdef0123"
TASK_ARN = f"arn:aws:ecs:us-east-1:123456789012:task/shop/{TASK_ID}"
RUNNING_TASK = "arn:aws:ecs:us-east-1:123456789012:task/shop/0a1b2c3d4e5f60718293a4b5c6d7e8f9"
# Secrets the plan masks, as the engine would give them: one holds a newline, which an env file
# cannot carry.
SECRETS = {
    "DATABASE_PASSWORD": "pa$$ word 'quoted' \"too\"",
    "DJANGO_SECRET_KEY": "k=ey#with=signs",
    "SIGNING_KEY_PEM": "-----BEGIN KEY-----\nAAAA\n-----END KEY-----",
}


# ---------------------------------------------------------------- the plans' stack state


@pytest.fixture(scope="module")
def plans(stack_plan: Callable[..., Plan]) -> Callable[[Path, str], Plan]:
    """`plans(project, stack)`: the offline plan of a stack of the root project or of the
    notebook example (the session's cache)."""
    return lambda project, stack: stack_plan(stack, project=project)


def _outputs_file(tmp_path: Path, plan: Plan, **changes: Any) -> Path:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps({**plan.recording.outputs, **changes}))
    return path


def _resource(plan: Plan, type_: str, where: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    [found] = [r.inputs for r in plan.recording.resources if r.type == type_ and where(r.inputs)]
    return found


def _web_service(plan: Plan) -> dict[str, Any]:
    return _resource(plan, "aws:ecs/service:Service", lambda inputs: "loadBalancers" in inputs)


def _task_definition(plan: Plan, ecs: Any) -> dict[str, Any]:
    """DescribeTaskDefinition's answer for the web service's task definition of the plan."""
    arn = _web_service(plan)["taskDefinition"]
    family = arn.rsplit("/", 1)[-1].rsplit(":", 1)[0]
    inputs = _resource(
        plan, "aws:ecs/taskDefinition:TaskDefinition", lambda i: i.get("family") == family
    )
    shape = ecs.meta.service_model.shape_for("TaskDefinition")
    described = {key: value for key, value in inputs.items() if key in shape.members}
    described["containerDefinitions"] = json.loads(inputs["containerDefinitions"])
    return {**described, "taskDefinitionArn": arn, "revision": 1, "status": "ACTIVE"}


def _app_log_prefix(definition: dict[str, Any]) -> str:
    [app] = [c for c in definition["containerDefinitions"] if c["name"] == "app"]
    return str(app["logConfiguration"]["options"]["awslogs-stream-prefix"])


class AwsStack:
    """The stubbed ECS and CloudWatch Logs of one planned AWS stack."""

    def __init__(self, aws: Aws, plan: Plan) -> None:
        self.aws = aws
        self.plan = plan
        self.outputs = plan.recording.outputs
        self.service = _web_service(plan)
        self.definition = _task_definition(plan, aws.ecs)
        self.family = self.definition["family"]
        self.registered = (
            f"arn:aws:ecs:us-east-1:123456789012:task-definition/{self.family}-one-off-command:1"
        )
        self.stream = f"{_app_log_prefix(self.definition)}/app/{TASK_ID}"
        [app] = [c for c in self.definition["containerDefinitions"] if c["name"] == "app"]
        self.log_group = app["logConfiguration"]["options"]["awslogs-group"]

    def service_described(self, exec_enabled: bool | None = None) -> None:
        network = self.service["networkConfiguration"]
        enabled = self.service["enableExecuteCommand"] if exec_enabled is None else exec_enabled
        self.aws.ecs_stub.add_response(
            "describe_services",
            {
                "services": [
                    {
                        "serviceName": self.outputs["serviceName"],
                        "clusterArn": self.service["cluster"],
                        "taskDefinition": self.service["taskDefinition"],
                        "status": "ACTIVE",
                        "enableExecuteCommand": enabled,
                        "networkConfiguration": {
                            "awsvpcConfiguration": {
                                "subnets": network["subnets"],
                                "securityGroups": network["securityGroups"],
                                "assignPublicIp": "DISABLED",
                            }
                        },
                    }
                ],
                "failures": [],
            },
            {"cluster": self.outputs["clusterName"], "services": [self.outputs["serviceName"]]},
        )

    def task_starts(self) -> None:
        self.service_described()
        self.aws.ecs_stub.add_response(
            "describe_task_definition",
            {"taskDefinition": self.definition},
            {"taskDefinition": self.service["taskDefinition"]},
        )
        self.aws.ecs_stub.add_response(
            "register_task_definition", {"taskDefinition": {"taskDefinitionArn": self.registered}}
        )
        network = self.service["networkConfiguration"]
        service = self.outputs["serviceName"]
        self.aws.ecs_stub.add_response(
            "run_task",
            {"tasks": [{"taskArn": TASK_ARN, "lastStatus": "PROVISIONING"}], "failures": []},
            {
                "cluster": self.service["cluster"],
                "taskDefinition": self.registered,
                "launchType": "FARGATE",
                "count": 1,
                "startedBy": f"pulumi-django-manage/{service}",
                "group": f"pulumi-django-manage:{service}",
                "networkConfiguration": {
                    "awsvpcConfiguration": {
                        "subnets": network["subnets"],
                        "securityGroups": network["securityGroups"],
                        "assignPublicIp": "DISABLED",
                    }
                },
            },
        )

    def task_is(self, status: str, **fields: Any) -> None:
        self.aws.ecs_stub.add_response(
            "describe_tasks",
            {"tasks": [{"taskArn": TASK_ARN, "lastStatus": status, **fields}], "failures": []},
            {"cluster": self.service["cluster"], "tasks": [TASK_ARN]},
        )

    def task_stopped(self, exit_code: int | None, **fields: Any) -> None:
        container: dict[str, Any] = {"name": "app"}
        if exit_code is not None:
            container["exitCode"] = exit_code
        self.task_is("STOPPED", containers=[container], **fields)

    def deregistered(self) -> None:
        self.aws.ecs_stub.add_response(
            "deregister_task_definition", {}, {"taskDefinition": self.registered}
        )

    def stopped_by_us(self, reason: str) -> None:
        self.aws.ecs_stub.add_response(
            "stop_task",
            {},
            {"cluster": self.service["cluster"], "task": TASK_ARN, "reason": reason},
        )

    def log_brings(self, token: str | None, lines: list[str], next_token: str) -> None:
        """One GetLogEvents page from `token` on; then, when it moved, the empty page at the end."""
        request: dict[str, Any] = {
            "logGroupName": self.log_group,
            "logStreamName": self.stream,
            "startFromHead": True,
        }
        if token:
            request["nextToken"] = token
        events = [{"timestamp": 1, "message": line, "ingestionTime": 2} for line in lines]
        self.aws.logs_stub.add_response(
            "get_log_events", {"events": events, "nextForwardToken": next_token}, request
        )
        if next_token != token:
            self.aws.logs_stub.add_response(
                "get_log_events",
                {"events": [], "nextForwardToken": next_token},
                {**request, "nextToken": next_token},
            )


@pytest.fixture(params=[ROOT, NOTEBOOK], ids=["bigfoot", "notebook"])
def aws_stack(
    request: pytest.FixtureRequest,
    aws: Aws,
    plans: Callable[[Path, str], Plan],
    monkeypatch: pytest.MonkeyPatch,
) -> AwsStack:
    """The dev stack of an example app, its AWS calls going to the Stubbers on a fake clock."""
    monkeypatch.setattr(
        DeployedStack, "aws_client", lambda _self, service: aws.clients(service, "us-east-1")
    )
    monkeypatch.setattr(one_off, "WAITING", one_off.Waiting(aws.time.clock, aws.time.sleep))
    return AwsStack(aws, plans(request.param, "dev"))


def _manage(
    stack: AwsStack | Plan, tmp_path: Path, *argv: str, project: Path | None = None, **outputs: Any
) -> int:
    """`manage ARGV` on the plan's stack (in a copy of its project at `project`, when given)."""
    plan = stack.plan if isinstance(stack, AwsStack) else stack
    project = project or plan.stack_file.project_dir
    outputs_file = _outputs_file(tmp_path, plan, **outputs)
    return main(
        [
            "manage",
            "--stack",
            plan.stack_file.stack,
            "--cwd",
            str(project),
            "--outputs",
            str(outputs_file),
            *argv,
        ]
    )


class Terminal:
    """stdout, remembering how many DescribeTasks calls had been made when each line came."""

    def __init__(self, aws: Aws) -> None:
        self.aws = aws
        self.lines: list[tuple[str, int]] = []
        self.pending = ""

    def write(self, text: str) -> int:
        self.pending += text
        *complete, self.pending = self.pending.split("\n")
        for line in complete:
            self.lines.append((line, len(self.aws.requests("DescribeTasks"))))
        return len(text)

    def flush(self) -> None:
        pass


def _project_copy(plan: Plan, directory: Path, *, exec_on: bool = True, aws: str = "") -> Path:
    """A copy of the plan's project (its Pulumi.yaml, program and stack file) in `directory`,
    the stack file turning ECS Exec on (`django:fleet.enableExecuteCommand`) and with more
    `aws:` lines after its region."""
    source = plan.stack_file.project_dir
    directory.mkdir()
    (directory / "Pulumi.yaml").write_text((source / "Pulumi.yaml").read_text())
    (directory / "__main__.py").write_text("")
    name = f"Pulumi.{plan.stack_file.stack}.yaml"
    text = (
        (source / name)
        .read_text()
        .replace("  aws:region: us-east-1\n", f"  aws:region: us-east-1\n{aws}")
    )
    if exec_on:
        fleet = "  django:fleet:\n"
        text = (
            text.replace(fleet, f"{fleet}    enableExecuteCommand: true\n")
            if fleet in text
            else f"{text}{fleet}    enableExecuteCommand: true\n"
        )
    (directory / name).write_text(text)
    return directory


# ---------------------------------------------------------------- AWS: a one-off task


def test_a_one_off_task_streams_its_log_and_exits_with_its_code(
    aws_stack: AwsStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal = Terminal(aws_stack.aws)
    monkeypatch.setattr(sys, "stdout", terminal)
    aws_stack.task_starts()
    aws_stack.task_is("PENDING")  # no log to read yet
    aws_stack.task_is("RUNNING")
    aws_stack.aws.logs_stub.add_client_error(
        "get_log_events", "ResourceNotFoundException", "The specified log stream does not exist."
    )
    aws_stack.task_is("RUNNING")
    aws_stack.log_brings(None, ["Operations to perform:", "  Apply all migrations"], "f/1")
    aws_stack.task_is("RUNNING")
    aws_stack.log_brings("f/1", ["Planned operations:"], "f/2")
    aws_stack.task_stopped(3, stoppedReason="Essential container in task exited")
    aws_stack.deregistered()
    aws_stack.log_brings("f/2", ["CommandError: it's over"], "f/3")
    aws_stack.log_brings("f/3", [], "f/3")  # a poll that brings nothing: the log is complete

    code = _manage(aws_stack, tmp_path, "--", "migrate", "--plan", "--database", "a b")

    assert code == 3
    assert terminal.lines == [
        ("Operations to perform:", 3),  # shown while the task ran, not after
        ("  Apply all migrations", 3),
        ("Planned operations:", 4),
        ("CommandError: it's over", 5),
    ]
    [registered] = aws_stack.aws.requests("RegisterTaskDefinition")
    [app] = [c for c in aws_stack.definition["containerDefinitions"] if c["name"] == "app"]
    assert registered["family"] == f"{aws_stack.family}-one-off-command"
    [container] = registered["containerDefinitions"]
    assert container["command"] == ["python", "manage.py", "migrate", "--plan", "--database", "a b"]
    assert "healthCheck" not in container
    # As the app runs: its own environment and secrets (its database role), not the master login.
    assert container["environment"] == app["environment"]
    assert container.get("secrets") == app.get("secrets")
    assert container["logConfiguration"] == app["logConfiguration"]
    assert aws_stack.aws.requests("ListTasks") == []  # never waits for a release's tasks


def test_a_task_whose_container_never_ran_is_one_line_exit_2(
    aws_stack: AwsStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    aws_stack.task_starts()
    aws_stack.task_stopped(
        None, stoppedReason="CannotPullContainerError: pull access denied for the image"
    )
    aws_stack.deregistered()
    aws_stack.log_brings(None, [], "f/0")
    aws_stack.log_brings("f/0", [], "f/0")

    code = _manage(aws_stack, tmp_path, "--", "check", "--deploy")

    assert code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert errors == [
        f"pulumi-django manage: error: one-off command task {TASK_ARN} stopped before its "
        "container ran: CannotPullContainerError: pull access denied for the image"
    ]


def test_a_task_past_its_timeout_is_stopped(
    aws_stack: AwsStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    aws_stack.task_starts()
    aws_stack.task_is("RUNNING")  # at 0 s
    aws_stack.log_brings(None, ["waiting for a lock"], "f/1")
    for _seconds in (2, 4, 6):
        aws_stack.task_is("RUNNING")
        aws_stack.log_brings("f/1", [], "f/1")
    aws_stack.stopped_by_us("pulumi-django: one-off command exceeded 5 s")
    aws_stack.log_brings("f/1", [], "f/1")  # what it logged meanwhile
    aws_stack.deregistered()

    code = _manage(aws_stack, tmp_path, "--timeout", "5", "--", "rebuild_index")

    assert code == 2
    assert aws_stack.aws.time.sleeps == [2.0, 2.0, 2.0]
    captured = capsys.readouterr()
    assert captured.out.splitlines() == ["waiting for a lock"]
    [error] = [line for line in captured.err.splitlines() if "error:" in line]
    assert error == (
        f"pulumi-django manage: error: one-off command task {TASK_ARN} did not finish within 5 s "
        "(--timeout) and was stopped; what the command had committed stays"
    )


def test_ctrl_c_stops_the_task_then_exits_130(
    aws_stack: AwsStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(_seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(one_off, "WAITING", one_off.Waiting(aws_stack.aws.time.clock, interrupted))
    aws_stack.task_starts()
    aws_stack.task_is("RUNNING")
    aws_stack.log_brings(None, ["Python 3.12"], "f/1")
    aws_stack.stopped_by_us("pulumi-django: one-off command interrupted (Ctrl-C)")
    aws_stack.deregistered()

    assert _manage(aws_stack, tmp_path, "--", "dbshell") == 130
    assert [name for name, _ in aws_stack.aws.sent][-2:] == ["StopTask", "DeregisterTaskDefinition"]


# ---------------------------------------------------------------- AWS: ECS Exec


def _stub(bin_dir: Path, name: str, body: str) -> Path:
    return python_executable(bin_dir, name, f"import json, os, sys\n{body}\n")


def _exec_tools(bin_dir: Path, record: Path, exit_code: int = 0) -> None:
    _stub(
        bin_dir,
        "aws",
        f"json.dump({{'argv': sys.argv[1:], 'env': dict(os.environ)}}, open({str(record)!r}, 'w'))"
        f"\nsys.exit({exit_code})",
    )
    _stub(bin_dir, "session-manager-plugin", "sys.exit(0)")


def _running_task_listed(aws_stack: AwsStack, **task: Any) -> None:
    cluster = aws_stack.service["cluster"]
    aws_stack.aws.ecs_stub.add_response(
        "list_tasks",
        {"taskArns": [TASK_ARN, RUNNING_TASK]},
        {
            "cluster": cluster,
            "serviceName": aws_stack.outputs["serviceName"],
            "desiredStatus": "RUNNING",
        },
    )
    agent = {"name": "ExecuteCommandAgent", "lastStatus": "RUNNING"}
    aws_stack.aws.ecs_stub.add_response(
        "describe_tasks",
        {
            "tasks": [
                {"taskArn": TASK_ARN, "lastStatus": "PROVISIONING", "enableExecuteCommand": True},
                {
                    "taskArn": RUNNING_TASK,
                    "lastStatus": "RUNNING",
                    "enableExecuteCommand": True,
                    "containers": [{"name": "app", "managedAgents": [agent]}],
                    **task,
                },
            ]
        },
        {"cluster": cluster, "tasks": [TASK_ARN, RUNNING_TASK]},
    )


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        ((), "python manage.py shell"),
        (("--", "createsuperuser", "--username", "o'brien"), ANY),
    ],
    ids=["shell", "createsuperuser"],
)
def test_interactive_opens_ecs_exec_in_a_running_task(
    aws_stack: AwsStack, tmp_path: Path, bin_dir: Path, argv: tuple[str, ...], command: Any
) -> None:
    record = tmp_path / "aws.json"
    _exec_tools(bin_dir, record, exit_code=7)
    aws_stack.service_described(exec_enabled=True)
    _running_task_listed(aws_stack)

    project = _project_copy(aws_stack.plan, tmp_path / "project")
    assert _manage(aws_stack, tmp_path, "--interactive", *argv, project=project) == 7

    ran = json.loads(record.read_text())
    assert ran["argv"] == [
        "ecs",
        "execute-command",
        "--cluster",
        aws_stack.service["cluster"],
        "--task",
        RUNNING_TASK,
        "--container",
        "app",
        "--interactive",
        "--command",
        command,
        "--region",
        "us-east-1",
    ]
    if argv:  # the agent splits the command as a shell would: each word arrives whole
        import shlex

        assert shlex.split(ran["argv"][10]) == ["python", "manage.py", *argv[1:]]


def test_ecs_exec_off_in_the_stack_file_is_one_line_before_asking_aws(
    aws_stack: AwsStack, tmp_path: Path, bin_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The examples' dev stacks leave fleet.enableExecuteCommand off (the default)."""
    _exec_tools(bin_dir, tmp_path / "aws.json")
    stack = aws_stack.plan.stack_file.stack
    assert not aws_stack.service["enableExecuteCommand"]

    assert _manage(aws_stack, tmp_path, "--interactive") == 2

    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(
        f"pulumi-django manage: error: ECS Exec is off for stack {stack}: set "
        "django:fleet.enableExecuteCommand true and run pulumi up"
    )
    assert aws_stack.aws.requests("DescribeServices") == []
    assert not (tmp_path / "aws.json").exists()


def test_ecs_exec_on_in_the_file_but_off_on_the_service_says_to_deploy(
    aws_stack: AwsStack, tmp_path: Path, bin_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _exec_tools(bin_dir, tmp_path / "aws.json")
    aws_stack.service_described(exec_enabled=False)
    project = _project_copy(aws_stack.plan, tmp_path / "project")

    assert _manage(aws_stack, tmp_path, "--interactive", project=project) == 2

    [line] = capsys.readouterr().err.splitlines()
    assert f"ECS Exec is off for service {aws_stack.outputs['serviceName']}, though" in line
    assert line.endswith(f"run `pulumi up --stack {aws_stack.plan.stack_file.stack}`")
    assert not (tmp_path / "aws.json").exists()


@pytest.mark.parametrize(
    ("tools", "expected"),
    [
        ((), "the AWS CLI (`aws`) is not on PATH: install AWS CLI v2"),
        (("aws",), "the Session Manager plugin (`session-manager-plugin`) is not on PATH"),
        (("aws", "session-manager-plugin"), "has no RUNNING task to open a shell in"),
    ],
)
def test_what_ecs_exec_lacks_is_one_line(
    aws_stack: AwsStack,
    tmp_path: Path,
    bin_dir: Path,
    capsys: pytest.CaptureFixture[str],
    tools: tuple[str, ...],
    expected: str,
) -> None:
    for tool in tools:
        _stub(bin_dir, tool, "sys.exit(0)")
    aws_stack.service_described(exec_enabled=True)
    if len(tools) == 2:
        aws_stack.aws.ecs_stub.add_response("list_tasks", {"taskArns": []})

    project = _project_copy(aws_stack.plan, tmp_path / "project")
    assert _manage(aws_stack, tmp_path, "--interactive", "--", "shell", project=project) == 2

    [line] = capsys.readouterr().err.splitlines()
    assert expected in line


@pytest.fixture
def ecs_exec_with_aws_settings(
    aws: Aws,
    plans: Callable[[Path, str], Plan],
    tmp_path: Path,
    bin_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[[str], dict[str, Any]]:
    """Runs `manage -i` on a copy of the root project whose dev stack has `settings` (more
    `aws:` lines) after its region; returns what the stand-in AWS CLI was run with (`argv`,
    `env`)."""
    monkeypatch.setattr(
        DeployedStack, "aws_client", lambda _self, service: aws.clients(service, "us-east-1")
    )

    def run(settings: str) -> dict[str, Any]:
        stack = AwsStack(aws, plans(ROOT, "dev"))
        project = _project_copy(stack.plan, tmp_path / "project", aws=settings)
        record = tmp_path / "aws.json"
        _exec_tools(bin_dir, record)
        stack.service_described(exec_enabled=True)
        _running_task_listed(stack)
        outputs = _outputs_file(tmp_path, stack.plan)

        code = main(
            ["manage", "--stack", "dev", "--cwd", str(project), "--outputs", str(outputs), "-i"]
        )

        assert code == 0
        ran: dict[str, Any] = json.loads(record.read_text())
        return ran

    return run


def test_ecs_exec_acts_as_the_stacks_profile(
    ecs_exec_with_aws_settings: Callable[[str], dict[str, Any]],
) -> None:
    ran = ecs_exec_with_aws_settings("  aws:profile: ops\n")
    assert ran["argv"][-2:] == ["--profile", "ops"]


def test_ecs_exec_gets_the_assumed_roles_credentials_in_its_environment(
    ecs_exec_with_aws_settings: Callable[[str], dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With `aws:assumeRoles`, the AWS CLI gets the role's credentials from boto3's session
    (the chain `pulumi up` uses), in its environment, not on its command line."""
    from botocore.credentials import Credentials

    from pulumi_django.providers import aws_session

    asked: list[Any] = []

    class Session:  # boto3's, after the STS AssumeRole calls
        def get_credentials(self) -> Credentials:
            return Credentials("ASIAROLE", "role-secret", "role-token")

    def assumed(settings: dict[str, Any], region: str | None) -> Session:
        asked.append((settings["assume_roles"][0]["role_arn"], region))
        return Session()

    monkeypatch.setattr(aws_session, "cached_session", assumed)
    monkeypatch.setenv("AWS_PROFILE", "someone-else")
    role = "arn:aws:iam::123456789012:role/deployer"

    ran = ecs_exec_with_aws_settings(f"  aws:assumeRoles:\n    - roleArn: {role}\n")

    assert asked == [(role, "us-east-1")]
    assert "--profile" not in ran["argv"]
    assert "role-secret" not in " ".join(ran["argv"])
    assert {k: ran["env"].get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")} == {
        "AWS_ACCESS_KEY_ID": "ASIAROLE",
        "AWS_SECRET_ACCESS_KEY": "role-secret",
    }
    assert ran["env"]["AWS_SESSION_TOKEN"] == "role-token"
    assert "AWS_PROFILE" not in ran["env"]


# ---------------------------------------------------------------- local: a one-off container


def _app_container(plan: Plan) -> tuple[str, dict[str, Any]]:
    """The first app container's name (the `appContainers` output) and its recorded inputs."""
    name = plan.recording.outputs["appContainers"][0]
    [inputs] = [
        r.inputs
        for r in plan.recording.resources
        if r.type == "docker:index/container:Container" and name.startswith(f"{r.name}-")
    ]
    return name, inputs


def _inspected(name: str, inputs: dict[str, Any]) -> list[dict[str, Any]]:
    """`docker container inspect NAME` of a container created from the plan's inputs, its
    masked secrets given values."""
    env = [entry for entry in inputs["envs"] if entry != SECRET]
    env += [f"{key}={value}" for key, value in SECRETS.items()]
    mounts = inputs.get("mounts", [])
    return [
        {
            "Id": "c0ffee" * 10 + "abcd",
            "Name": f"/{name}",
            "Image": inputs["image"],
            "Config": {"Image": inputs["image"], "Env": env, "User": inputs.get("user", "")},
            "HostConfig": {
                "Init": inputs.get("init", False),
                "ReadonlyRootfs": inputs.get("readOnly", False),
                "Tmpfs": inputs.get("tmpfs", {}),
                "Mounts": [
                    {
                        "Type": m["type"],
                        "Source": m["source"],
                        "Target": m["target"],
                        "ReadOnly": m.get("readOnly", False),
                    }
                    for m in mounts
                ],
            },
            "Mounts": [
                {
                    "Type": m["type"],
                    "Name": m["source"],
                    "Source": f"/var/lib/docker/volumes/{m['source']}/_data",
                    "Destination": m["target"],
                    "Driver": "local",
                    "Mode": "z",
                    "RW": not m.get("readOnly", False),
                    "Propagation": "",
                }
                for m in mounts
            ],
            "NetworkSettings": {
                "Networks": {net["name"]: {"Aliases": []} for net in inputs["networksAdvanced"]}
            },
        }
    ]


DOCKER_STUB = """
record = {record!r}
if sys.argv[1:3] == ["container", "inspect"]:
    if sys.argv[3] != {name!r}:
        print("Error: No such container: " + sys.argv[3], file=sys.stderr)
        sys.exit(1)
    print(open({inspected!r}).read())
    sys.exit(0)
argv = sys.argv[1:]
env_file = argv[argv.index("--env-file") + 1]
passed = [argv[i + 1] for i, word in enumerate(argv) if word == "--env"]
json.dump(
    {{
        "argv": argv,
        "env_file": open(env_file).read(),
        "env_file_mode": os.stat(env_file).st_mode & 0o777,
        "passed": {{name: os.environ.get(name) for name in passed}},
    }},
    open(record, "w"),
)
print("hello from the container")
sys.exit(5)
"""


@pytest.fixture(params=[ROOT, NOTEBOOK], ids=["bigfoot", "notebook"])
def local_plan(request: pytest.FixtureRequest, plans: Callable[[Path, str], Plan]) -> Plan:
    return plans(request.param, "local")


def _docker(bin_dir: Path, tmp_path: Path, plan: Plan) -> Path:
    name, inputs = _app_container(plan)
    inspected = tmp_path / "inspect.json"
    inspected.write_text(json.dumps(_inspected(name, inputs)))
    record = tmp_path / "docker.json"
    _stub(
        bin_dir,
        "docker",
        DOCKER_STUB.format(record=str(record), name=name, inspected=str(inspected)),
    )
    return record


def test_local_runs_a_one_off_container_copying_the_app_container(
    local_plan: Plan, tmp_path: Path, bin_dir: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    record = _docker(bin_dir, tmp_path, local_plan)
    _name, inputs = _app_container(local_plan)

    code = _manage(local_plan, tmp_path, "--", "changepassword", "ada lovelace")

    assert code == 5  # the container's exit code
    assert "hello from the container" in capfd.readouterr().out
    ran = json.loads(record.read_text())
    argv = ran["argv"]
    env_file = argv[argv.index("--env-file") + 1]
    mounts = [
        f"type=volume,source={m['source']},target={m['target']}"
        + (",readonly" if m.get("readOnly") else "")
        for m in inputs["mounts"]
    ]
    assert argv == [
        "run",
        "--rm",
        "--network",
        local_plan.recording.outputs["networkName"],
        "--env-file",
        env_file,
        "--env",
        "SIGNING_KEY_PEM",
        "--user",
        inputs["user"],
        *(["--init"] if inputs.get("init") else []),
        *[word for mount in mounts for word in ("--mount", mount)],
        inputs["image"],
        "python",
        "manage.py",
        "changepassword",
        "ada lovelace",
    ]
    plain = [entry for entry in inputs["envs"] if entry != SECRET]
    secrets = [f"{k}={v}" for k, v in SECRETS.items() if "\n" not in v]
    assert ran["env_file"].splitlines() == plain + secrets
    assert ran["env_file_mode"] == 0o600
    assert ran["passed"] == {"SIGNING_KEY_PEM": SECRETS["SIGNING_KEY_PEM"]}
    for value in SECRETS.values():  # no secret on the command line
        assert all(value not in word for word in argv)
    assert not Path(env_file).exists()  # removed with its directory


@pytest.mark.parametrize(
    ("interactive", "tty", "flags"),
    [
        (False, False, []),
        (False, True, ["-i", "-t"]),
        (True, True, ["-i", "-t"]),
        (True, False, ["-i"]),  # piped input: `-t` would make docker refuse
    ],
)
def test_local_attaches_stdin_when_interactive_or_on_a_terminal(
    plans: Callable[[Path, str], Plan],
    tmp_path: Path,
    bin_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    interactive: bool,
    tty: bool,
    flags: list[str],
) -> None:
    plan = plans(ROOT, "local")
    record = _docker(bin_dir, tmp_path, plan)
    monkeypatch.setattr(manage, "_stdin_is_tty", lambda: tty)

    _manage(plan, tmp_path, *(["--interactive"] if interactive else ["--", "shell"]))

    argv = json.loads(record.read_text())["argv"]
    assert argv[2 : argv.index("--network")] == flags
    assert argv[-3:] == ["python", "manage.py", "shell"]


def test_args_without_the_double_dash_and_flags_after_it_go_to_manage_py(
    plans: Callable[[Path, str], Plan], tmp_path: Path, bin_dir: Path
) -> None:
    plan = plans(ROOT, "local")
    record = _docker(bin_dir, tmp_path, plan)

    _manage(plan, tmp_path, "showmigrations", "--plan")
    assert json.loads(record.read_text())["argv"][-3:] == ["manage.py", "showmigrations", "--plan"]

    _manage(plan, tmp_path, "--", "--help")
    assert json.loads(record.read_text())["argv"][-2:] == ["manage.py", "--help"]


def test_local_mistakes_are_one_line(
    plans: Callable[[Path, str], Plan],
    tmp_path: Path,
    bin_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    plan = plans(ROOT, "local")
    assert _manage(plan, tmp_path, "--", "check") == 2
    [line] = capsys.readouterr().err.splitlines()
    assert "the docker CLI is not on PATH: install Docker" in line

    _docker(bin_dir, tmp_path, plan)
    gone = ["bigfoot-local-app-9-gone"]
    assert _manage(plan, tmp_path, "--", "check", appContainers=gone) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert "the app container bigfoot-local-app-9-gone does not exist (Error: No such" in line
    assert line.endswith("is stack local up? Run `pulumi up --stack local`")


def test_local_with_the_docker_daemon_down_says_so_not_that_the_stack_is_down(
    local_plan: Plan, tmp_path: Path, bin_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The docker CLI without a daemon: `container inspect` prints `[]` and the reason, exit 1."""
    _stub(bin_dir, "docker", DAEMON_DOWN_STUB)

    assert _manage(local_plan, tmp_path, "--", "check") == 2

    [line] = capsys.readouterr().err.splitlines()
    assert line == (
        "pulumi-django manage: error: Docker is not answering: Cannot connect to the Docker "
        "daemon at unix:///var/run/docker.sock. Is the docker daemon running?; start Docker"
    )


DAEMON_DOWN_STUB = """
print("[]")
print(
    "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon "
    "running?",
    file=sys.stderr,
)
sys.exit(1)
"""


# ---------------------------------------------------------------- mistakes on either target


def test_usual_mistakes_are_one_line(
    plans: Callable[[Path, str], Plan], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = plans(ROOT, "dev")
    outputs = plan.recording.outputs
    never = tmp_path / "never.json"
    never.write_text("{}")
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps({k: v for k, v in outputs.items() if k != "clusterName"}))
    root = ["--cwd", str(ROOT)]
    cases = {
        ("--stack", "nope", *root, "--", "check"): "no stack file Pulumi.nope.yaml",
        ("--stack", "dev", *root, "--outputs", str(never), "--", "check"): "it was never deployed",
        ("--stack", "dev", *root, "--outputs", str(partial), "--", "check"): (
            "stack dev has no output 'clusterName'"
        ),
        ("--stack", "dev", *root, "--outputs", str(never)): (
            "give the manage.py command after --, e.g. `pulumi-django manage --stack dev -- "
            "migrate --plan`, or --interactive for a shell"
        ),
        ("--stack", "dev", *root, "--timeout", "0", "--", "check"): "--timeout 0: give a number",
    }
    for argv, expected in cases.items():
        assert main(["manage", *argv]) == 2
        [line] = capsys.readouterr().err.splitlines()
        assert expected in line, argv


def test_flags_after_the_double_dash_are_manage_pys_and_the_error_says_so(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["manage", "--", "check", "--deploy", "--stack", "dev"])
    assert exit_.value.code == 2
    error = capsys.readouterr().err.splitlines()[-1]
    assert error == (
        "pulumi-django manage: error: the following arguments are required: --stack; put "
        "pulumi-django's flags before `--` (after it, they go to manage.py)"
    )

    with pytest.raises(SystemExit):  # no `--stack` anywhere: argparse's own line
        main(["manage", "--", "check", "--deploy"])
    assert capsys.readouterr().err.splitlines()[-1].endswith("required: --stack")


def test_the_one_off_tag_is_not_the_migration_jobs() -> None:
    """A one-off task never blocks a release's migration job: ListTasks on the migration tag
    does not find it, and the one-off task checks no tag before it starts."""
    from pulumi_django.providers.release_task import started_by

    service = "bigfoot-dev-service-a1b2c3d"
    assert started_by(service) == f"pulumi-django-migrate/{service}"
    assert started_by(service, one_off.STARTED_BY_PREFIX) == f"pulumi-django-manage/{service}"
