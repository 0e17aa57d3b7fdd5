"""A Pulumi program of your own, built from pulumi-django's components: the app's database and
cache in an existing VPC, and its ECS service on an existing cluster behind an existing internal
load balancer (its HTTPS listener and target group), which CloudFront reaches through a VPC
origin made here. Nothing of what exists is created again: no VPC, no cluster, no load
balancer, listener or target group.

The fleet connects to the database as the app's own role (`Database.app_role`: IAM database
authentication, which `Database` turns on, no password), never as the master user; the release's
one-off tasks log in as the master and create or update that role before `migrate`.

Each `pulumi up` then deploys a release, in the order a rolling release needs, every step
waiting for the one before: the app's image is built and pushed -> its static files are
published to your bucket, next to the kept releases' -> the migration safety check, then the
migration job, run as one-off tasks of the new task definition -> the service rolls to it. A
step that fails stops the release there, with the fleet still on the previous release.

Stack config, under this project's namespace (`pulumi config set --path shop:...`):
- `vpc`: `vpcId`, `publicSubnetIds`, `privateSubnetIds` of the existing VPC.
- `loadBalancer`: `arn`, `listenerArn` (HTTPS), `targetGroupArn` (IP targets) and
  `securityGroupId` of the existing load balancer: internal, in the private subnets (an
  internet-facing one is refused), its group admitting CloudFront's VPC-origin group
  (`CloudFront-VPCOrigins-Service-SG`) on 443.
- `clusterArn`: the ECS cluster (with the FARGATE capacity provider).
- `staticBucket`: the bucket your CloudFront distribution serves `/static/*` from.
- `host`: the site's host name; `originVerifySecret` (secret): the header value your CloudFront
  distribution sends the load balancer, through the VPC origin exported as `vpcOriginId`.

`tests/test_library_program.py` runs it under `pulumi_django.testing` and under a plain
`pulumi.runtime.set_mocks` recipe.
"""

import pulumi
import pulumi_aws as aws

from pulumi_django import (
    AppConfig,
    AppImage,
    AppImageArgs,
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
    MigrationJob,
    MigrationJobArgs,
    Network,
    NetworkArgs,
    NetworkConfig,
    StaticRelease,
)

NAME = "shop"
config = pulumi.Config()
vpc = config.require_object("vpc")
existing_lb = config.require_object("loadBalancer")
host = config.require("host")
cluster = config.require("clusterArn")
# The app, built from its directory next to this project. Set in code, `AppConfig` knows
# nothing of your app: name its settings module and its WSGI and ASGI applications.
app = AppConfig(
    context="../notebook",
    server="uvicorn",
    settings_module="notebook.settings.production",
    wsgi_app="notebook.wsgi:application",
    asgi_app="notebook.asgi:application",
)


def keep_on_destroy(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult:
    """The data tier outlives the stack: `pulumi destroy` leaves all of it in AWS."""
    retained = pulumi.ResourceOptions(retain_on_delete=True)
    return pulumi.ResourceTransformResult(
        args.props, pulumi.ResourceOptions.merge(args.opts, retained)
    )


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
    opts=data_tier,
)
cache = Cache(
    NAME,
    CacheArgs(
        security_group_id=network.cache_security_group_id,
        subnet_ids=network.private_subnet_ids,
    ),
    opts=data_tier,
)

# The existing load balancer gets one forwarding rule on its listener, to its target group,
# and the CloudFront VPC origin your distribution reaches it through (refused if it is
# internet-facing).
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

# The release, step by step. 1. The image, built and pushed to a repository of its own.
image = AppImage(NAME, AppImageArgs(app=app))
# 2. Its static files, published from the image to your bucket before any server of the
# release runs; the kept releases' files stay, for the servers still running them. It waits
# for the image by taking its reference.
static_release = StaticRelease(
    f"{NAME}-static-release",
    bucket=config.require("staticBucket"),
    release_id=image.image_ref,
    image=image.image_ref,
    static_root=app.static_root,
    region=aws.get_region_output().region,
)
task = AppTask(
    NAME,
    AppTaskArgs(
        app=app,
        image_ref=image.image_ref,
        repository_arn=image.repository_arn,
        database=DatabaseEndpoint(
            host=database.address,
            port=database.port,
            name=database.database_name,
            username=database.username,
            secret_arn=database.master_secret_arn,
            # The fleet connects as the app's own role; the release's tasks as the master.
            app_role=database.app_role,
        ),
        cache=CacheEndpoint(url=cache.url_without_password, auth_secret_arn=cache.auth_secret_arn),
        # The task definition is registered only once the cache's AUTH token exists.
        secret_versions=[cache.auth_secret_version],
        site_host=host,
        site_url=f"https://{host}",
        static_url=f"https://{host}/static/",
        vpc_cidr=network.vpc_cidr,
        stop_timeout_seconds=app.graceful_timeout_seconds + 10,
        fleet=fleet,
    ),
)
# 3. The migration safety check, then the migrations, as one-off tasks of the new task
# definition, once the static files are out: as the master user, setting the app's role up
# before `migrate`, once every secret they read has its value.
migrations = MigrationJob(
    NAME,
    MigrationJobArgs(
        settings_module=app.settings_module,
        cluster=cluster,
        task_definition_arn=task.task_definition_arn,
        container_name=task.app_container_name,
        subnet_ids=network.private_subnet_ids,
        security_group_ids=[network.app_security_group_id],
        log_group_name=task.log_group_name,
        release_id=image.image_ref,
        service_name=NAME,
        after=[static_release],
        container_overrides=task.release_overrides,
        setup_commands=task.release_setup_commands,
        secret_versions=[*task.secret_versions, cache.auth_secret_version],
    ),
)
# 4. The fleet rolls to the new task definition only once the migrations ran.
service = AppService(
    NAME,
    AppServiceArgs(
        fleet=fleet,
        proxy_port=8080,
        cluster=cluster,
        task_definition_arn=task.task_definition_arn,
        subnet_ids=network.private_subnet_ids,
        security_group_ids=[network.app_security_group_id],
        # Resolves once the listener rule exists: ECS refuses a target group no rule serves.
        target_group=load_balancer.target_group_arn,
        load_balancer_arn_suffix=load_balancer.arn_suffix,
        after=[migrations],
    ),
)

pulumi.export("databaseAddress", database.address)
pulumi.export("cacheEndpoint", cache.primary_endpoint)
pulumi.export("serviceName", service.service_name)
pulumi.export("releaseImage", image.image_ref)
pulumi.export("appliedMigrations", migrations.applied_migrations)
# What your distribution's origin for the app names (`vpc_origin_config.vpc_origin_id`).
pulumi.export("vpcOriginId", load_balancer.vpc_origin_id)
