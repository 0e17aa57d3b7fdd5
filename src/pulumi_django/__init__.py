"""pulumi-django: Pulumi components that deploy Django to AWS or to local Docker so that rolling
releases never break the site.

Everything a program needs imports from here: the components (each built as
`Component(name, ComponentArgs(...), opts)`), their args, the config models and the errors;
`pulumi_django.testing` runs a program offline for its unit tests. docs/library.md is the guide.

Names load on first use: the components pull in the AWS and Docker SDKs (seconds), and the
`pulumi-django` command, which imports this package first, must start at once.
"""

# Not `typing.TYPE_CHECKING`: importing `typing` would double the command's start-up time.
# Type checkers read the block below as true by this name alone.
TYPE_CHECKING = False

# Where each public name is defined, relative to this package.
_EXPORTS: dict[str, tuple[str, ...]] = {
    "components.aws.site": ("AwsSite",),
    "components.aws.network": ("Network", "NetworkArgs"),
    "components.aws.database": ("AppDatabaseRole", "Database", "DatabaseArgs"),
    "components.aws.cache": ("Cache", "CacheArgs"),
    "components.aws.load_balancer": ("LoadBalancer", "LoadBalancerArgs", "LoadBalancerOrigin"),
    "components.aws.static_site": ("StaticSite", "StaticSiteArgs"),
    "components.aws.media_storage": ("MediaOrigin", "MediaStorage", "MediaStorageArgs"),
    "components.aws.app_image": ("AppImage", "AppImageArgs"),
    "components.aws.cluster": ("Cluster", "ClusterArgs"),
    "components.aws.app_task": (
        "AppTask",
        "AppTaskArgs",
        "CacheEndpoint",
        "DatabaseEndpoint",
        "MediaBucket",
    ),
    "components.aws.app_service": ("AppService", "AppServiceArgs"),
    "components.aws.migration_job": ("MigrationJob", "MigrationJobArgs"),
    "components.aws.worker_service": ("WorkerService", "WorkerServiceArgs"),
    "components.aws.stack_key": ("StackKey", "StackKeyArgs"),
    "components.aws.log_bucket": ("LogBucket", "LogBucketArgs"),
    "components.local.site": ("LocalSite",),
    "components.local.app_image": ("LocalAppImage", "LocalAppImageArgs"),
    "components.local.app": ("LocalAppReplicas", "LocalAppReplicasArgs"),
    "components.local.data": ("LocalData", "LocalDataArgs"),
    "components.local.media": ("LocalMedia", "LocalMediaArgs"),
    "components.local.migration_job": ("LocalMigrationJob", "LocalMigrationJobArgs"),
    "components.local.proxy": ("LocalProxy", "LocalProxyArgs"),
    "components.local.proxy_switch": ("LocalProxySwitch", "LocalProxySwitchArgs"),
    "components.local.static": ("LocalStaticRelease", "LocalStaticReleaseArgs"),
    "components.local.workers": ("LocalWorkers", "LocalWorkersArgs"),
    "config": ("ConfigError", "StackConfig", "load_stack_config"),
    "config.app": ("AppConfig",),
    "config.cache": ("CacheConfig",),
    "config.database": ("DatabaseConfig",),
    "config.domain": ("DomainConfig",),
    "config.fleet": ("AutoscalingConfig", "FleetConfig", "RollingUpdateConfig"),
    "config.load_balancer": ("LoadBalancerConfig",),
    "config.local": ("LocalConfig",),
    "config.media": ("MediaConfig",),
    "config.migrations": ("AcknowledgedMigration", "MigrationsConfig"),
    "config.network": ("ExistingNetwork", "NetworkConfig"),
    "config.proxy": ("ProxyConfig",),
    "config.rehearsal": ("RehearsalConfig", "RehearsalForm"),
    "config.security": ("SecurityConfig",),
    "config.static": ("StaticConfig",),
    "config.workers": ("SchedulerConfig", "WorkerConfig", "WorkersConfig"),
    "components.args": ("ComponentArgsError",),
    "components.site": ("site_class",),
    "providers.static_release": ("StaticRelease",),
    "providers.aws_session": ("AssumeRole", "AwsSession"),
    "rendering.local_proxy": ("ProxyControl",),
    "errors": ("PulumiDjangoError",),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [
    "AcknowledgedMigration",
    "AppConfig",
    "AppDatabaseRole",
    "AppImage",
    "AppImageArgs",
    "AppService",
    "AppServiceArgs",
    "AppTask",
    "AppTaskArgs",
    "AssumeRole",
    "AutoscalingConfig",
    "AwsSession",
    "AwsSite",
    "Cache",
    "CacheArgs",
    "CacheConfig",
    "CacheEndpoint",
    "Cluster",
    "ClusterArgs",
    "ComponentArgsError",
    "ConfigError",
    "Database",
    "DatabaseArgs",
    "DatabaseConfig",
    "DatabaseEndpoint",
    "DomainConfig",
    "ExistingNetwork",
    "FleetConfig",
    "LoadBalancer",
    "LoadBalancerArgs",
    "LoadBalancerConfig",
    "LoadBalancerOrigin",
    "LocalAppImage",
    "LocalAppImageArgs",
    "LocalAppReplicas",
    "LocalAppReplicasArgs",
    "LocalConfig",
    "LocalData",
    "LocalDataArgs",
    "LocalMedia",
    "LocalMediaArgs",
    "LocalMigrationJob",
    "LocalMigrationJobArgs",
    "LocalProxy",
    "LocalProxyArgs",
    "LocalProxySwitch",
    "LocalProxySwitchArgs",
    "LocalSite",
    "LocalStaticRelease",
    "LocalStaticReleaseArgs",
    "LocalWorkers",
    "LocalWorkersArgs",
    "LogBucket",
    "LogBucketArgs",
    "MediaBucket",
    "MediaConfig",
    "MediaOrigin",
    "MediaStorage",
    "MediaStorageArgs",
    "MigrationJob",
    "MigrationJobArgs",
    "MigrationsConfig",
    "Network",
    "NetworkArgs",
    "NetworkConfig",
    "ProxyConfig",
    "ProxyControl",
    "PulumiDjangoError",
    "RehearsalConfig",
    "RehearsalForm",
    "RollingUpdateConfig",
    "SchedulerConfig",
    "SecurityConfig",
    "StackConfig",
    "StackKey",
    "StackKeyArgs",
    "StaticConfig",
    "StaticRelease",
    "StaticSite",
    "StaticSiteArgs",
    "WorkerConfig",
    "WorkerService",
    "WorkerServiceArgs",
    "WorkersConfig",
    "load_stack_config",
    "site_class",
]


if TYPE_CHECKING:
    from .components.args import ComponentArgsError
    from .components.aws.app_image import AppImage, AppImageArgs
    from .components.aws.app_service import AppService, AppServiceArgs
    from .components.aws.app_task import (
        AppTask,
        AppTaskArgs,
        CacheEndpoint,
        DatabaseEndpoint,
        MediaBucket,
    )
    from .components.aws.cache import Cache, CacheArgs
    from .components.aws.cluster import Cluster, ClusterArgs
    from .components.aws.database import AppDatabaseRole, Database, DatabaseArgs
    from .components.aws.load_balancer import LoadBalancer, LoadBalancerArgs, LoadBalancerOrigin
    from .components.aws.log_bucket import LogBucket, LogBucketArgs
    from .components.aws.media_storage import MediaOrigin, MediaStorage, MediaStorageArgs
    from .components.aws.migration_job import MigrationJob, MigrationJobArgs
    from .components.aws.network import Network, NetworkArgs
    from .components.aws.site import AwsSite
    from .components.aws.stack_key import StackKey, StackKeyArgs
    from .components.aws.static_site import StaticSite, StaticSiteArgs
    from .components.aws.worker_service import WorkerService, WorkerServiceArgs
    from .components.local.app import LocalAppReplicas, LocalAppReplicasArgs
    from .components.local.app_image import LocalAppImage, LocalAppImageArgs
    from .components.local.data import LocalData, LocalDataArgs
    from .components.local.media import LocalMedia, LocalMediaArgs
    from .components.local.migration_job import LocalMigrationJob, LocalMigrationJobArgs
    from .components.local.proxy import LocalProxy, LocalProxyArgs
    from .components.local.proxy_switch import LocalProxySwitch, LocalProxySwitchArgs
    from .components.local.site import LocalSite
    from .components.local.static import LocalStaticRelease, LocalStaticReleaseArgs
    from .components.local.workers import LocalWorkers, LocalWorkersArgs
    from .components.site import site_class
    from .config import ConfigError, StackConfig, load_stack_config
    from .config.app import AppConfig
    from .config.cache import CacheConfig
    from .config.database import DatabaseConfig
    from .config.domain import DomainConfig
    from .config.fleet import AutoscalingConfig, FleetConfig, RollingUpdateConfig
    from .config.load_balancer import LoadBalancerConfig
    from .config.local import LocalConfig
    from .config.media import MediaConfig
    from .config.migrations import AcknowledgedMigration, MigrationsConfig
    from .config.network import ExistingNetwork, NetworkConfig
    from .config.proxy import ProxyConfig
    from .config.rehearsal import RehearsalConfig, RehearsalForm
    from .config.security import SecurityConfig
    from .config.static import StaticConfig
    from .config.workers import SchedulerConfig, WorkerConfig, WorkersConfig
    from .errors import PulumiDjangoError
    from .providers.aws_session import AssumeRole, AwsSession
    from .providers.static_release import StaticRelease
    from .rendering.local_proxy import ProxyControl

    __version__: str
else:
    # Outside type checking only, so that a checker still flags a name this package lacks.
    def __getattr__(name: str) -> object:
        if name == "__version__":
            value: object = _version()
        elif name in _MODULE_OF:
            from importlib import import_module

            value = getattr(import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
        else:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        globals()[name] = value  # the next access skips this function
        return value

    def __dir__() -> list[str]:
        return sorted({*globals(), *__all__, "__version__"})

    def _version() -> str:
        """The installed distribution's version; a source tree that was never installed (no
        metadata to read) reports `0+unknown` rather than failing the import."""
        from importlib import metadata

        try:
            return metadata.version("pulumi-django")
        except metadata.PackageNotFoundError:
            return "0+unknown"
