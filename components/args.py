"""How every component's arguments are declared, so that the library reads one way.

A component takes `(name, args, opts)`. `args` is a frozen, keyword-only dataclass named
`<Component>Args` in the component's own file; each field is declared with `arg(...)`, whose
text is the field's documentation in the generated tables (README's library section). A field
that lets the user bring a child of their own takes either the resource object or its id/ARN,
and `None` (the default) means the component creates it; `resource_ref` turns either form
into the one Output the component needs.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable, Sequence
from typing import Any

import pulumi

from pulumi_django.config.names import name_problems
from pulumi_django.errors import PulumiDjangoError

_MISSING: Any = dataclasses.MISSING


class ComponentArgsError(PulumiDjangoError, pulumi.RunError):
    """A component's arguments do not fit together (a required one missing, two that exclude
    each other); the message names the argument, and Pulumi prints it as one line."""


def check_name(component: str, name: str, *, major: str | None = None) -> None:
    """Raises ComponentArgsError, one line, when a name the `component` derives from `name`
    is one AWS refuses (too long, `--` where AWS forbids it, a reserved prefix...): the table of
    derived names and AWS's limits is `pulumi_django.config.names`. `major`: the PostgreSQL
    major of the names that hold one."""
    problems = name_problems(
        name,
        component=component,
        project=pulumi.get_project(),
        stack=pulumi.get_stack(),
        major=major,
    )
    if problems:
        raise ComponentArgsError(problems[0].line(f"{component} name {name!r}: "))


def arg(doc: str, *, default: Any = _MISSING, default_factory: Any = _MISSING) -> Any:
    """A component argument: `doc` says what it is and what its default does."""
    return dataclasses.field(
        default=default, default_factory=default_factory, metadata={"doc": doc}
    )


def resource_ref(value: pulumi.Resource | pulumi.Input[str], attribute: str) -> pulumi.Output[str]:
    """An existing child given as a resource (its `attribute`, e.g. `arn` or `id`) or as the
    id/ARN itself."""
    if isinstance(value, pulumi.Resource):
        return pulumi.Output.from_input(getattr(value, attribute))
    return pulumi.Output.from_input(value)


def brought_attributes(
    value: pulumi.Resource | pulumi.Input[str],
    attributes: Sequence[str],
    lookup: Callable[[pulumi.Input[str]], pulumi.Output[Any]],
) -> list[pulumi.Output[Any]]:
    """The `attributes` of a brought child that the component reads (a bucket's ARN, an ALB's
    DNS name). Given the resource object, each is read off it; given its id/name/ARN (the
    first attribute, returned as given), the others are read off `lookup(value)`, the
    provider's data source (`aws.s3.get_bucket_output`, ...), whose result names them alike."""
    if isinstance(value, pulumi.Resource):
        return [resource_ref(value, attribute) for attribute in attributes]
    found = lookup(value)
    return [
        pulumi.Output.from_input(value),
        *(found.apply(operator.attrgetter(key)) for key in attributes[1:]),
    ]


def arn_resource(arn: pulumi.Input[str]) -> pulumi.Output[str]:
    """The resource part of an ARN, after its fifth colon (`targetgroup/NAME/ID`,
    `cluster/NAME`, `loadbalancer/app/NAME/ID`), from which AWS derives names and the suffixes
    CloudWatch's dimensions use; a value that is no ARN (a bare name) is returned as it is."""
    return pulumi.Output.from_input(arn).apply(lambda text: text.split(":", 5)[-1])
