"""A Pulumi program of your own, built from pulumi-django's components: the app's database and
cache in an existing VPC, and its ECS service on an existing cluster behind an existing load
balancer (its HTTPS listener and target group). Nothing of what exists is created again: no VPC,
no cluster, no load balancer, listener or target group.

Stack config, under this project's namespace (`pulumi config set --path shop:...`):
- `vpc`: `vpcId`, `publicSubnetIds`, `privateSubnetIds` of the existing VPC.
- `loadBalancer`: `arn`, `listenerArn` (HTTPS), `targetGroupArn` (IP targets) and
  `securityGroupId` of the existing load balancer.
- `clusterArn`: the ECS cluster (with the FARGATE capacity provider).
- `image`: the app image by digest, and `repositoryArn`: its ECR repository.
- `host`: the site's host name; `originVerifySecret` (secret): the header value your CloudFront
  distribution sends the load balancer.

`tests/test_library_program.py` runs it under `pulumi_django.testing` and under a plain
`pulumi.runtime.set_mocks` recipe.
"""

import pulumi

from pulumi_django import (
    AppService,
    AppServiceArgs,
    AppTask,
    AppTaskArgs,
    Cache,
    CacheArgs,
    CacheEndpoint,
    Database,
    DatabaseArgs,
    DatabaseConfig,
    DatabaseEndpoint,
    ExistingNetwork,
    FleetConfig,
    LoadBalancer,
    LoadBalancerArgs,
    Network,
    NetworkArgs,
    NetworkConfig,
)

NAME = "shop"
config = pulumi.Config()
vpc = config.require_object("vpc")
existing_lb = config.require_object("loadBalancer")
host = config.require("host")


def keep_on_destroy(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult:
    """The data tier outlives the stack: `pulumi destroy` leaves all of it in AWS."""
    retained = pulumi.ResourceOptions(retain_on_delete=True)
    return pulumi.ResourceTransformResult(
        args.props, pulumi.ResourceOptions.merge(args.opts, retained)
    )


def iam_database_authentication(
    args: pulumi.ResourceTransformArgs,
) -> pulumi.ResourceTransformResult | None:
    """A setting `DatabaseConfig` does not offer, set on the child that has it. Transforms see
    the engine's (camelCase) input names."""
    if args.type_ != "aws:rds/instance:Instance":
        return None
    props = {**args.props, "iamDatabaseAuthenticationEnabled": True}
    return pulumi.ResourceTransformResult(props, args.opts)


# Only security groups are created in the existing VPC: the app's, the database's and the
# cache's, and the rules from the load balancer's group (yours) to the app's.
network = Network(
    NAME,
    NetworkArgs(
        config=NetworkConfig(
            existing=ExistingNetwork(
                vpc_id=vpc["vpcId"],
                public_subnet_ids=vpc["publicSubnetIds"],
                private_subnet_ids=vpc["privateSubnetIds"],
            )
        ),
        tiers=("lb", "app", "db", "cache"),
        security_groups={"lb": existing_lb["securityGroupId"]},
    ),
)
data_tier = pulumi.ResourceOptions(transforms=[keep_on_destroy])
database = Database(
    NAME,
    DatabaseArgs(
        config=DatabaseConfig(instance_class="db.t4g.medium", multi_az=False),
        security_group_id=network.database_security_group_id,
        subnet_ids=network.private_subnet_ids,
    ),
    opts=pulumi.ResourceOptions.merge(
        data_tier, pulumi.ResourceOptions(transforms=[iam_database_authentication])
    ),
)
cache = Cache(
    NAME,
    CacheArgs(
        security_group_id=network.cache_security_group_id,
        subnet_ids=network.private_subnet_ids,
    ),
    opts=data_tier,
)

# The existing load balancer gets one forwarding rule on its listener, to its target group.
load_balancer = LoadBalancer(
    NAME,
    LoadBalancerArgs(
        origin_verify_secret=config.require_secret("originVerifySecret"),
        load_balancer=existing_lb["arn"],
        listener=existing_lb["listenerArn"],
        target_group=existing_lb["targetGroupArn"],
        priority=10,
    ),
)
fleet = FleetConfig(desired_count=2, min_count=2, max_count=4)
task = AppTask(
    NAME,
    AppTaskArgs(
        image_ref=config.require("image"),
        repository_arn=config.require("repositoryArn"),
        database=DatabaseEndpoint(
            host=database.address,
            port=database.port,
            name=database.database_name,
            username=database.username,
            secret_arn=database.master_secret_arn,
        ),
        cache=CacheEndpoint(url=cache.url_without_password, auth_secret_arn=cache.auth_secret_arn),
        site_host=host,
        site_url=f"https://{host}",
        static_url=f"https://{host}/static/",
        vpc_cidr=network.vpc_cidr,
        stop_timeout_seconds=40,
        fleet=fleet,
    ),
)
service = AppService(
    NAME,
    AppServiceArgs(
        fleet=fleet,
        proxy_port=8080,
        cluster=config.require("clusterArn"),
        task_definition_arn=task.task_definition_arn,
        private_subnet_ids=network.private_subnet_ids,
        security_group_id=network.app_security_group_id,
        # Resolves once the listener rule exists: ECS refuses a target group no rule serves.
        target_group=load_balancer.target_group_arn,
        load_balancer_arn_suffix=load_balancer.arn_suffix,
    ),
)

pulumi.export("databaseAddress", database.address)
pulumi.export("cacheEndpoint", cache.primary_endpoint)
pulumi.export("serviceName", service.service_name)
