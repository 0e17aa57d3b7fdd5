"""`RdsLogGroup`: the CloudWatch Logs group an RDS instance exports one log to,
`/aws/rds/instance/<identifier>/<log>`, given a retention (and the stack's KMS key).

RDS creates that group itself on the instance's first export, with no retention: it never
expires (terraform-provider-aws #5348). It writes into a group of that name that exists, but
an `aws.cloudwatch.LogGroup` can only be created first if the identifier is known before the
instance exists, which takes an explicit identifier; on a stack whose instance Pulumi
auto-named, that renames it in place (ModifyDBInstance `NewDBInstanceIdentifier`), which
changes its endpoint at once, and every running task loses its database until the next
release has rolled out. Created after the instance, a LogGroup races RDS's first export and
fails with ResourceAlreadyExistsException when RDS wins. So this resource runs after the
instance exists and takes the group as it finds it:

- creates it when it is missing (with the KMS key), and takes it as it is when RDS made it
  first (`ResourceAlreadyExistsException`);
- puts the retention policy;
- associates the KMS key when one is given (AssociateKmsKey replaces any earlier association;
  only log events ingested afterwards are encrypted with it), and disassociates it when a key
  that was given is removed.

`diff` compares the group's name and region (another group: a replacement), its retention and
its key (an update). Deleting the resource deletes nothing: the group and the logs in it stay
until they expire under its retention (RDS keeps exporting into it while the instance lives;
delete the group yourself to drop the logs sooner). Every call acts as the stack's `aws:`
settings say (`providers.aws_session`). The identity needs `logs:CreateLogGroup`,
`logs:PutRetentionPolicy`, and with a key `logs:AssociateKmsKey` (`logs:DisassociateKmsKey`
to remove it); the key's policy must let CloudWatch Logs use it (`StackKey` does).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pulumi
import pulumi.dynamic

from ..errors import PulumiDjangoError
from .aws_session import aws_client, with_session
from .release_task import changed

# Another group (a replaced instance's, another region's): a new resource.
REPLACE_KEYS = ("log_group_name", "region")
# The same group, set again.
UPDATE_KEYS = ("retention_in_days", "kms_key_arn")

ClientFactory = Callable[..., Any]
"""(service, region[, session=aws_session settings]) -> a boto3 client."""


class RdsLogGroupError(PulumiDjangoError, pulumi.RunError):
    """CloudWatch Logs refused a call; the message names the group and the permission."""


def settle_log_group(
    logs: Any, name: str, retention_days: int, kms_key_arn: str | None, *, old_key: str | None
) -> bool:
    """Makes the group `name` exist with the retention and key; True when it existed already
    (RDS created it on its first export). `old_key`: the key last set, removed when the new
    one is None."""
    from botocore.exceptions import BotoCoreError, ClientError

    action = "logs:CreateLogGroup"
    existed = False
    try:
        try:
            logs.create_log_group(
                logGroupName=name, **({"kmsKeyId": kms_key_arn} if kms_key_arn else {})
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ResourceAlreadyExistsException":
                raise
            existed = True
        action = "logs:PutRetentionPolicy"
        logs.put_retention_policy(logGroupName=name, retentionInDays=int(retention_days))
        if kms_key_arn and existed:
            action = "logs:AssociateKmsKey"
            logs.associate_kms_key(logGroupName=name, kmsKeyId=kms_key_arn)
        elif not kms_key_arn and old_key:
            action = "logs:DisassociateKmsKey"
            logs.disassociate_kms_key(logGroupName=name)
    except ClientError as error:
        details = error.response.get("Error", {})
        raise RdsLogGroupError(
            f"log group {name}: {details.get('Code', '?')}: {details.get('Message', '')}; the "
            f"identity needs {action} on it"
            + (" and the KMS key must let CloudWatch Logs use it" if kms_key_arn else "")
        ) from None
    except BotoCoreError as error:
        raise RdsLogGroupError(f"log group {name}: {error}") from None
    return existed


class RdsLogGroupProvider(pulumi.dynamic.ResourceProvider):
    """Create and update settle the group; delete leaves it (module docstring)."""

    def __init__(self, clients: ClientFactory = aws_client) -> None:
        super().__init__()
        self.clients = clients

    def _settle(self, props: Mapping[str, Any], old_key: str | None) -> dict[str, Any]:
        logs = with_session(self.clients, props.get("aws_session"))("logs", props.get("region"))
        existed = settle_log_group(
            logs,
            props["log_group_name"],
            props["retention_in_days"],
            props.get("kms_key_arn") or None,
            old_key=old_key,
        )
        outputs = {k: v for k, v in props.items() if not k.startswith("__")}
        return {**outputs, "found_existing": existed}

    def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
        return pulumi.dynamic.CreateResult(props["log_group_name"], self._settle(props, None))

    def diff(
        self, _id: str, olds: dict[str, Any], news: dict[str, Any]
    ) -> pulumi.dynamic.DiffResult:
        replaces = [key for key in REPLACE_KEYS if olds.get(key) != news.get(key)]
        return pulumi.dynamic.DiffResult(
            changes=changed(olds, news, (*REPLACE_KEYS, *UPDATE_KEYS)),
            replaces=replaces,
            stables=[],
            delete_before_replace=False,
        )

    def update(
        self, _id: str, olds: dict[str, Any], news: dict[str, Any]
    ) -> pulumi.dynamic.UpdateResult:
        return pulumi.dynamic.UpdateResult(self._settle(news, olds.get("kms_key_arn") or None))

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Nothing: the group and its logs stay until they expire (module docstring)."""


class RdsLogGroup(pulumi.dynamic.Resource, module="database", name="RdsLogGroup"):
    """The log group `log_group_name` (RDS's own name for an exported log), made to expire
    after `retention_in_days` and encrypted with `kms_key_arn` when given. Declare it after
    the instance (it depends on the instance's identifier)."""

    log_group_name: pulumi.Output[str]
    retention_in_days: pulumi.Output[int]
    kms_key_arn: pulumi.Output[str | None]
    found_existing: pulumi.Output[bool]

    def __init__(
        self,
        resource_name: str,
        *,
        log_group_name: pulumi.Input[str],
        retention_in_days: pulumi.Input[int],
        kms_key_arn: pulumi.Input[str] | None = None,
        region: pulumi.Input[str] | None = None,
        aws_session: pulumi.Input[Mapping[str, Any] | None] = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props: dict[str, Any] = {
            "log_group_name": log_group_name,
            "retention_in_days": retention_in_days,
            "kms_key_arn": kms_key_arn,
            "region": region,
            "aws_session": aws_session,
            "found_existing": None,
        }
        super().__init__(RdsLogGroupProvider(), resource_name, props, opts)
