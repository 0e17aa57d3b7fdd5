"""Stack config: secure defaults, clear errors naming key path, bad value and what is allowed."""

from __future__ import annotations

import json
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, SecretStr

from pulumi_django.config import ConfigError, StackConfig, parse_stack_config
from pulumi_django.config.base import Text
from pulumi_django.config.loader import misspelt_namespace_keys

ROOT = Path(__file__).resolve().parent.parent


def parse(**sections: Any) -> StackConfig:
    values = {
        key: value if isinstance(value, str) else json.dumps(value)
        for key, value in sections.items()
    }
    return parse_stack_config(values, {"secretKey"} if "secretKey" in values else set())


def problems_of(**sections: Any) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        parse(**sections)
    return raised.value.problems


def test_defaults_are_the_secure_ones() -> None:
    config = parse(target="aws")
    assert config.database.multi_az
    assert config.database.deletion_protection
    assert not config.database.skip_final_snapshot
    assert config.database.backup_retention_days >= 7
    assert config.database.performance_insights
    assert config.cache.nodes == 2
    assert config.network.egress == "nat-per-az"
    rolling = config.fleet.rolling_update
    assert (rolling.circuit_breaker, rolling.rollback) == (True, True)
    assert (rolling.minimum_healthy_percent, rolling.maximum_percent) == (100, 200)
    assert config.static.keep_releases == 5
    assert config.migrations.check
    assert config.migrations.command == ["python", "manage.py", "migrate", "--noinput"]
    assert not config.fleet.enable_execute_command
    assert config.stop_timeout_seconds > config.app.graceful_timeout_seconds
    # Uploads are user data: private, kept when the stack goes, never deleted with it.
    assert config.media.enabled and config.media.access == "private"
    assert config.media.retain_on_delete and not config.media.force_destroy


@pytest.mark.parametrize(
    ("sections", "expected"),
    [
        ({}, "django:target: required; Where to deploy"),
        ({"target": "azure"}, "django:target = 'azure': Input should be 'aws' or 'local'"),
        (
            {"target": "aws", "name": "Bad Name"},
            "django:name = 'Bad Name': wrong format; Base name",
        ),
        (
            {"target": "aws", "database": {"backupRetentionDays": 3}},
            "django:database.backupRetentionDays = 3: Input should be greater than or equal to 7",
        ),
        (
            {"target": "aws", "database": {"instanceClass": "m5.large"}},
            "django:database.instanceClass = 'm5.large': wrong format; RDS instance class",
        ),
        (
            {"target": "aws", "database": {"maintenanceWindow": "sunday 4am"}},
            "django:database.maintenanceWindow = 'sunday 4am': use ddd:hh:mm-ddd:hh:mm",
        ),
        (
            {"target": "aws", "fleet": {"cpu": 512, "memory": 512}},
            "django:fleet: memory 512 does not fit cpu 512; use 1024..4096 in steps of 1024",
        ),
        (
            {"target": "aws", "fleet": {"desiredCount": 9, "maxCount": 4}},
            "django:fleet: need minCount <= desiredCount <= maxCount; got minCount 2 "
            "(default), desiredCount 9, maxCount 4",
        ),
        (
            {"target": "aws", "fleet": {"rollingUpdate": {"maximumPercent": 100}}},
            "django:fleet.rollingUpdate: maximumPercent must exceed minimumHealthyPercent",
        ),
        (
            {"target": "aws", "fleet": {"rollingUpdate": {"circuitBreaker": False}}},
            "django:fleet.rollingUpdate: rollback needs circuitBreaker: true",
        ),
        (
            {"target": "aws", "network": {"cidr": "8.8.0.0/16"}},
            "django:network.cidr = '8.8.0.0/16': use a private range from /16 to /22",
        ),
        (
            {"target": "aws", "app": {"preload": "false"}},
            "django:app.preload = 'false': use true or false, without quotes",
        ),
        (
            {"target": "aws", "network": {"availabilityZones": 1}},
            "django:network.availabilityZones = 1: Input should be greater than or equal to 2",
        ),
        (
            {
                "target": "aws",
                "network": {
                    "existing": {
                        "vpcId": "vpc-0123abcd",
                        "publicSubnetIds": ["subnet-1", "subnet-2"],
                        "privateSubnetIds": ["subnet-3"],
                    }
                },
            },
            'django:network.existing.privateSubnetIds = ["subnet-3"]: ',
        ),
        (
            {"target": "aws", "app": {"environment": {"API_TOKEN": "abc"}}},
            "django:app.environment: API_TOKEN looks like a secret; "
            "put its Secrets Manager ARN under app.secrets",
        ),
        (
            {"target": "aws", "app": {"secrets": {"STRIPE_KEY": "sk_live_123"}}},
            "is not a Secrets Manager or SSM parameter ARN; give the ARN, never the secret itself",
        ),
        (
            {"target": "aws", "app": {"gracefulTimeoutSeconds": 115}},
            "app.gracefulTimeoutSeconds must be at most 110",
        ),
        (
            {
                "target": "aws",
                "migrations": {"acknowledged": [{"migration": "0002", "reason": "x"}]},
            },
            "django:migrations.acknowledged[0].migration = '0002': use app_label.migration_name",
        ),
        (
            {"target": "aws", "cache": {"engine": "memcached"}},
            "django:cache.engine = 'memcached': Input should be 'redis' or 'valkey'",
        ),
        ({"target": "aws", "fleet": "big"}, "django:fleet = 'big': expected an object"),
        (
            {"target": "aws", "colour": "blue"},
            "django:colour: unknown key; allowed keys: target, name, app, proxy, fleet",
        ),
        (
            {"target": "aws", "workers": {"services": {"celery": {"command": ["c"], "comand": 1}}}},
            "django:workers.services.celery.comand: unknown key; allowed keys: cpu, memory, "
            "stopTimeoutSeconds, healthCheck, command, count",
        ),
        (
            {
                "target": "aws",
                "workers": {"services": {"celery": {"command": ["c"], "minCount": 3}}},
            },
            "django:workers.services.celery: need minCount <= count <= maxCount; got minCount 3, "
            "count 1 (default), maxCount 1 (default: count)",
        ),
        (
            {
                "target": "aws",
                "workers": {"services": {"celery": {"command": ["c"], "count": 5, "maxCount": 4}}},
            },
            "django:workers.services.celery: need minCount <= count <= maxCount; got minCount 5 "
            "(default: count), count 5, maxCount 4",
        ),
        (
            {"target": "aws", "workers": {"scheduler": {"command": ["b"], "healthCheck": {}}}},
            "django:workers.scheduler.healthCheck.command: required",
        ),
        (
            {"target": "aws", "media": {"urlPath": "/static/uploads/"}},
            "django:media: urlPath '/static/uploads/' overlaps static.prefix 'static/'",
        ),
        (
            {
                "target": "aws",
                "static": {"prefix": "files/static/"},
                "media": {"urlPath": "/files/"},
            },
            "django:media: urlPath '/files/' overlaps static.prefix 'files/static/'",
        ),
        (
            {"target": "local", "app": {"healthCheckPath": "/media/health"}},
            "django:media: urlPath '/media/' holds app.healthCheckPath '/media/health'",
        ),
        (
            {"target": "aws", "media": {"forceDestroy": True}},
            "django:media: forceDestroy: true has no effect while retainOnDelete is true",
        ),
        (
            {"target": "aws", "media": {"signedUrlExpirySeconds": 604801}},
            "django:media.signedUrlExpirySeconds = 604801: Input should be less than or equal",
        ),
        (
            {"target": "aws", "media": {"access": "open"}},
            "django:media.access = 'open': Input should be 'private' or 'public'",
        ),
        (
            {"target": "aws", "media": {"urlPath": "uploads"}},
            "django:media.urlPath = 'uploads': wrong format; URL path of media",
        ),
        (
            {"target": "aws", "app": {"environment": {"MEDIA_BUCKET": "mine"}}},
            "django:app.environment: MEDIA_BUCKET is set by pulumi-django; remove it",
        ),
        (
            {"target": "aws", "static": {"errorCachingSeconds": 10}},
            "django:static.errorCachingSeconds = 10: retired: CloudFront no longer caches any "
            "error",
        ),
        ({"target": "aws", "secretKey": "plain"}, None),
    ],
)
def test_mistakes_name_the_key_path_the_value_and_what_is_allowed(
    sections: dict[str, Any], expected: str | None
) -> None:
    if expected is None:
        # A secret given as a secret is fine, and never echoed back.
        assert parse(**sections).secret_key == SecretStr("plain")
        return
    problems = problems_of(**sections)
    assert any(expected in problem for problem in problems), problems


def test_every_problem_is_reported_at_once() -> None:
    problems = problems_of(
        target="gcp",
        fleet={"cpu": 300, "replicas": 4},
        database={"backupRetentionDays": 40},
    )
    assert len(problems) == 4
    assert all(problem.startswith("django:") for problem in problems)


def test_secrets_must_be_stored_as_secrets_and_are_never_echoed() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_stack_config({"target": "aws", "secretKey": "hunter2"}, set())
    assert "pulumi config set --secret django:secretKey" in str(raised.value)
    assert "hunter2" not in str(raised.value)
    with pytest.raises(ConfigError) as raised:
        parse_stack_config({"target": "aws", "app": json.dumps({"port": "x"})}, {"app"})
    assert "only django:secretKey may be secret" in str(raised.value)


@pytest.mark.parametrize("stack", ["dev", "prod", "local"])
def test_shipped_stack_files_are_valid(stack: str) -> None:
    document = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    values = {
        key.removeprefix("django:"): value if isinstance(value, str) else json.dumps(value)
        for key, value in document.items()
        if key.startswith("django:")
    }
    config = parse_stack_config(values, set())
    assert config.target == ("local" if stack == "local" else "aws")


def test_dev_relaxes_the_database_explicitly_and_prod_not_at_all() -> None:
    dev = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())["config"]["django:database"]
    assert dev["multiAz"] is False and dev["deletionProtection"] is False
    prod = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())["config"]["django:database"]
    assert not {"multiAz", "deletionProtection", "skipFinalSnapshot", "performanceInsights"} & set(
        prod
    )


# --- property-based: random invalid values at every field give a clean error ----------------


def _leaves(
    model: type[BaseModel], path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], Any]]:
    found = []
    for name, field in model.model_fields.items():
        key = (*path, field.alias or name)
        annotation = Text if Text.__metadata__[0] in field.metadata else field.annotation
        nested = (
            annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel)
            else None
        )
        if nested is None:
            models = [
                a for a in get_args(annotation) if isinstance(a, type) and issubclass(a, BaseModel)
            ]
            nested = models[0] if models and get_origin(annotation) is not list else None
        if nested is not None:
            found += _leaves(nested, key)
        else:
            found.append((key, annotation))
    return found


LEAVES = [leaf for leaf in _leaves(StackConfig) if leaf[0] != ("target",)]
ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def _wrong_type(annotation: Any) -> st.SearchStrategy[Any]:
    """JSON values that can never be valid for a field of this type."""
    options = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) in (Union, types.UnionType) and len(options) == 1:
        annotation = options[0]
    origin = get_origin(annotation)
    if annotation is bool:
        return st.text(max_size=5) | st.integers() | st.floats(allow_nan=False)
    if annotation is int:
        return (
            st.text(max_size=5)
            | st.booleans()
            | st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: f != int(f))
            | st.lists(st.integers(), max_size=2)
        )
    if annotation is Text:  # whole numbers are taken as typed by `config set --path`
        return (
            st.floats(allow_nan=False)
            | st.booleans()
            | st.lists(st.text(max_size=3), min_size=1, max_size=2)
            | st.dictionaries(st.text(max_size=3), st.text(), min_size=1, max_size=2)
        )
    if annotation in (str, SecretStr) or origin is Literal:
        return (
            st.integers()
            | st.booleans()
            | st.lists(st.text(max_size=3), min_size=1, max_size=2)
            | st.dictionaries(st.text(max_size=3), st.text(), min_size=1, max_size=2)
        )
    if origin is dict:
        return st.text(max_size=5) | st.integers() | st.lists(st.integers(), min_size=1, max_size=2)
    if origin is list:
        return (
            st.text(max_size=5)
            | st.integers()
            | st.dictionaries(st.text(max_size=3), st.integers(), min_size=1, max_size=2)
        )
    raise AssertionError(f"no wrong-type strategy for {annotation}")


def _document(path: tuple[str, ...], value: Any) -> dict[str, str]:
    values: dict[str, str] = {"target": "aws"}
    nested: Any = value
    for part in reversed(path[1:]):
        nested = {part: nested}
    top = path[0]
    if top in ("name", "secretKey"):
        values[top] = value if isinstance(value, str) else json.dumps(value)
    else:
        values[top] = json.dumps(nested)
    return values


def _key(path: tuple[str, ...]) -> str:
    return "django:" + ".".join(path)


@pytest.mark.parametrize("leaf", LEAVES, ids=[_key(path) for path, _ in LEAVES])
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_wrong_type_at_every_field_is_rejected_with_its_key_path(
    leaf: tuple[tuple[str, ...], Any], data: st.DataObject
) -> None:
    path, annotation = leaf
    if path[0] in ("name", "secretKey"):
        return  # top-level scalars arrive as strings from Pulumi; covered below
    value = data.draw(_wrong_type(annotation))
    with pytest.raises(ConfigError) as raised:
        parse_stack_config(_document(path, value), set())
    problems = raised.value.problems
    assert any(problem.startswith(_key(path)) for problem in problems), problems


@settings(max_examples=400, deadline=None)
@given(leaf=st.sampled_from(LEAVES), value=ANY_JSON)
@example(leaf=(("app", "environment"), dict[str, str]), value={"\n": None, "A B": 1})
def test_any_value_anywhere_gives_a_config_or_a_clean_error(
    leaf: tuple[tuple[str, ...], Any], value: Any
) -> None:
    path, _ = leaf
    document = _document(path, value)
    try:
        parse_stack_config(document, {"secretKey"} if "secretKey" in document else set())
    except ConfigError as error:
        assert error.problems
        for problem in error.problems:
            assert problem.startswith("django:")
            assert "\n" not in problem
            assert "Traceback" not in problem


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=30))
def test_top_level_strings(text: str) -> None:
    try:
        config = parse_stack_config({"target": text}, set())
    except ConfigError as error:
        assert error.problems[0].startswith("django:target")
    else:
        assert config.target in ("aws", "local")


def test_whole_numbers_from_config_set_path_are_taken_as_text() -> None:
    """`pulumi config set --path django:database.engineVersion 16` stores the number 16."""
    config = parse_stack_config(
        {
            "target": "aws",
            "database": json.dumps({"engineVersion": 16}),
            "tags": json.dumps({"costCenter": 1234}),
            "app": json.dumps({"environment": {"WORKERS": 4}}),
            "migrations": json.dumps(
                {"command": ["python", "manage.py", "migrate", "--verbosity", 2]}
            ),
        },
        set(),
    )
    assert config.database.engine_version == "16"
    assert config.tags == {"costCenter": "1234"}
    assert config.app.environment == {"WORKERS": "4"}
    assert config.migrations.command[-1] == "2"


@pytest.mark.parametrize(
    ("section", "value", "message"),
    [
        (
            {"cache": {"engineVersion": 7.1}},
            "django:cache.engineVersion = 7.1",
            "a decimal number: quote it, e.g. '7.10' (unquoted, 7.10 reads as 7.1)",
        ),
        (
            {"app": {"environment": {"DEBUG": True}}},
            "django:app.environment.DEBUG = true",
            "a boolean: quote the text the app expects, e.g. 'true' or 'True'",
        ),
    ],
)
def test_booleans_and_decimals_in_text_fields_are_refused(
    section: dict[str, Any], value: str, message: str
) -> None:
    """Either could have meant other text than YAML left: `True` or `yes`, `7.10`."""
    [(key, content)] = section.items()
    with pytest.raises(ConfigError) as raised:
        parse_stack_config({"target": "aws", key: json.dumps(content)}, set())
    [problem] = raised.value.problems
    assert problem.startswith(f"{value}: {message}")


def test_a_flat_dotted_key_is_told_to_use_path() -> None:
    """`pulumi config set django:fleet.desiredCount 3` without `--path` writes one flat key."""
    with pytest.raises(ConfigError) as raised:
        parse_stack_config({"target": "aws", "fleet.desiredCount": "3"}, set())
    [problem] = raised.value.problems
    assert problem.startswith('django:["fleet.desiredCount"]: unknown key;')
    assert "pulumi config set --path django:fleet.desiredCount VALUE" in problem


@pytest.mark.parametrize("namespace", ["djang", "djnago", "djangoo", "Django", "jango"])
def test_a_namespace_one_typo_from_django_is_refused(namespace: str) -> None:
    keys = [f"{namespace}:tags", f"{namespace}:fleet.cpu", "django:target", "aws:region"]
    assert misspelt_namespace_keys(keys, "shop") == [
        f"{namespace}:tags: unknown namespace {namespace!r}; did you mean django:tags?",
        f"{namespace}:fleet.cpu: unknown namespace {namespace!r}; did you mean django:fleet.cpu?",
    ]


@pytest.mark.parametrize(
    "key",
    [
        "aws:region",
        "pulumi-django:tags",
        "djangoextra:tags",
        "docker:host",
        "django5:dbName",  # not one of our keys
        "djang:tags",  # the project's own namespace
    ],
)
def test_other_namespaces_are_left_alone(key: str) -> None:
    assert misspelt_namespace_keys([key], "djang") == []


def test_media_off_frees_its_path_and_the_key_prefix_follows_the_path() -> None:
    off = parse(target="aws", media={"enabled": False, "urlPath": "/static/"})
    assert not off.media.enabled
    nested = parse(target="aws", media={"urlPath": "/files/uploads/"})
    assert nested.media.location == "files/uploads"
    # A health path merely starting with the same letters is the app's.
    assert parse(target="aws", app={"healthCheckPath": "/media"}).media.url_path == "/media/"


LIST_KEYS = [
    field.alias or name
    for name, field in StackConfig.model_fields.items()
    if get_origin(field.annotation) is list
]


@pytest.mark.parametrize("key", LIST_KEYS)
def test_a_scalar_for_a_list_key_says_a_list_is_expected(key: str) -> None:
    """`django:allowReplacement: database` (no brackets) names what the key takes."""
    (problem,) = problems_of(**{key: "database"})
    assert problem.startswith(f"django:{key} = 'database': expected a list, e.g. [")
    assert "object with keys of its own" not in problem


def test_allow_replacement_names_its_choices() -> None:
    assert LIST_KEYS == ["allowReplacement"]
    (problem,) = problems_of(allowReplacement="database")
    assert "expected a list, e.g. [database] (any of database, cache)" in problem
