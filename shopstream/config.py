"""The one place that reads configuration.

Every setting is an environment variable named ``SHOPSTREAM_<FIELD>``; the same variables drive the
local platform, the tests, compose, Kubernetes and ECS. ``Settings.from_env()`` reads them all, so the
dataclass below is the complete list of what shopstream can be told.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ENV_PREFIX = "SHOPSTREAM_"

SERVICES = ("product", "order")


def _doc(text: str, default: Any) -> Any:
    return field(default=default, metadata={"doc": text})


@dataclass(frozen=True)
class Settings:
    data_dir: str = _doc("folder for PostgreSQL, Kafka, gateway state and logs", "")
    log_level: str = _doc("logging level of the Python processes", "INFO")
    instance_id: str = _doc("name of this process instance (set by the runtime)", "local-1")

    gateway_port: int = _doc("API gateway (nginx) port", 8080)
    gateway_status_port: int = _doc("nginx stub_status and fixed-response ceiling port", 8079)
    product_port: int = _doc("product-service port of instance 1", 8081)
    order_port: int = _doc("order-service port of instance 1", 8082)
    console_port: int = _doc("operator console port", 8090)
    instance_port_step: int = _doc("instance n listens on port + (n-1) * step", 100)
    product_instances: int = _doc("product-service instances started by `up`", 1)
    order_instances: int = _doc("order-service instances started by `up`", 1)

    gateway_rate_limit: int = _doc("requests per second allowed per client at the gateway", 5000)
    gateway_rate_burst: int = _doc("burst above the rate before the gateway answers 429", 10000)
    gateway_address_rate_limit: int = _doc(
        "requests per second (and burst) allowed per client address, whatever tokens it sends",
        20000,
    )
    gateway_route_concurrency: int = _doc(
        "requests one route (/products, /orders) may have in flight at the gateway (1-65535);"
        " past it the gateway answers 503 + Retry-After at once, instead of queueing requests"
        " until its connections run out (then 500s) and its clients time out",
        1024,
    )
    gateway_body_limit: str = _doc("largest request body the gateway accepts (nginx size)", "64k")
    gateway_tls_port: int = _doc("HTTPS port of the gateway (0: plain HTTP only)", 0)
    gateway_tls_cert: str = _doc(
        "PEM certificate the gateway serves (empty: one the local CA under <data>/gateway/tls issues)",
        "",
    )
    gateway_tls_key: str = _doc("PEM private key of gateway_tls_cert", "")
    gateway_tls_names: str = _doc(
        "host names or addresses, comma-separated, the local CA's certificate covers beside "
        "localhost, 127.0.0.1 and ::1",
        "",
    )
    gateway_https_redirect_port: int = _doc(
        "with TLS on: 0 serves plain HTTP as well; a port answers plain HTTP with 308 to HTTPS on "
        "that port (the one clients reach)",
        0,
    )
    gateway_header_limit: str = _doc(
        "largest request line or header the gateway accepts (nginx size); larger is 431", "8k"
    )
    gateway_balancing: str = _doc(
        "how the gateway spreads requests over a service's instances: least_conn, round_robin,"
        " random_two (two instances at random, the one with fewer connections) or customer_hash"
        " (one customer's requests to one instance)",
        "least_conn",
    )

    auth_issuer: str = _doc(
        "`iss` every bearer token must carry (the local issuer, or an OIDC provider's URL)",
        "shopstream-local",
    )
    auth_audience: str = _doc("`aud` every bearer token must carry", "shopstream")
    auth_jwks_url: str = _doc(
        "where the issuer publishes its JWKS, e.g. an OIDC provider's jwks_uri (derived when empty:"
        " the local issuer's jwks.json in the data folder)",
        "",
    )
    auth_leeway_seconds: float = _doc("clock skew allowed on a token's exp/nbf/iat", 30.0)
    auth_cache_entries: int = _doc(
        "validated tokens each process remembers (until they expire)", 10000
    )
    auth_admin_claim: str = _doc(
        "claim whose value (a string or a list) holds the caller's roles, e.g. cognito:groups",
        "roles",
    )
    service_token_file: str = _doc(
        "file holding the credential order-service presents on product-service's internal"
        " /reservations API (derived when empty: service-token in the data folder)",
        "",
    )
    service_token: str = _doc(
        "the credential itself, when a secret store hands it over as a variable (Kubernetes"
        " Secrets, ECS from Secrets Manager); when empty it is read from service_token_file",
        "",
    )

    postgres_host: str = _doc("PostgreSQL host", "127.0.0.1")
    postgres_port: int = _doc("PostgreSQL port of the private cluster", 15432)
    postgres_nodes: int = _doc(
        "PostgreSQL servers of the private cluster: 1, or 2 in the HA profile (a primary and a"
        " synchronous standby under Patroni, which fails over by itself)",
        1,
    )
    postgres_node_port_step: int = _doc("PostgreSQL node n listens on port + (n-1) * step", 1)
    postgres_user: str = _doc(
        "PostgreSQL login role a service process connects as (empty: the service's own,"
        " `product_service` or `order_service`); never a superuser, never the tables' owner",
        "",
    )
    postgres_password: str = _doc(
        "password of postgres_user (empty: the file the local runtime generates,"
        " <data>/auth/postgres/<role>)",
        "",
    )
    postgres_admin_user: str = _doc(
        "PostgreSQL role that creates the databases and the services' roles and runs the"
        " migrations as each database's owner role (the private cluster's superuser, RDS's master"
        " user); only `up`, `migrate` and the tools get it, never a service process",
        "shopstream",
    )
    postgres_admin_password: str = _doc(
        "password of postgres_admin_user (empty: the file the local runtime generates)", ""
    )
    product_database_url: str = _doc("product-service database URL (derived when empty)", "")
    order_database_url: str = _doc("order-service database URL (derived when empty)", "")
    postgres_sslmode: str = _doc(
        "sslmode of the derived database URLs (empty: the driver's default, TLS if offered,"
        " unverified); verify-full checks the server's certificate and name (RDS)",
        "",
    )
    postgres_sslrootcert: str = _doc(
        "CA bundle that verifies the server with sslmode verify-ca/verify-full (RDS: the image's"
        " /etc/ssl/rds/global-bundle.pem)",
        "",
    )
    db_pool_size: int = _doc("connections in each service instance's pool", 10)
    db_failover_seconds: float = _doc(
        "how long a request that is safe to repeat (a read, a POST with an Idempotency-Key, a"
        " reservation) is retried while PostgreSQL cannot be reached, before the client gets 503"
        " (0: 503 at once; the HA profile waits out a failover)",
        0.0,
    )
    worker_db_pool_size: int = _doc(
        "connections in each consumer process's pool (one event at a time needs few)", 4
    )

    kafka_bootstrap: str = _doc("Kafka bootstrap servers (derived from kafka_port when empty)", "")
    kafka_port: int = _doc("Kafka broker port of the local broker", 19092)
    kafka_controller_port: int = _doc("KRaft controller port of the local broker", 19093)
    kafka_heap: str = _doc("Kafka broker JVM heap", "512m")
    topic_partitions: str = _doc(
        "partitions per topic, `topic=n,...`",
        "product-events=3,order-events=3,stock-events=3,payment-events=3,dead-letter=1",
    )
    topic_replication: int = _doc("replication factor of the topics", 1)
    kafka_security_protocol: str = _doc(
        "PLAINTEXT (local broker), SSL (TLS) or SASL_SSL (TLS + SCRAM login, e.g. MSK)", "PLAINTEXT"
    )
    kafka_sasl_mechanism: str = _doc(
        "SASL mechanism with SASL_SSL (MSK: SCRAM-SHA-512)", "SCRAM-SHA-512"
    )
    kafka_sasl_username: str = _doc("SCRAM user (MSK: from the AmazonMSK_ secret)", "")
    kafka_sasl_password: str = _doc("SCRAM password (MSK: from the AmazonMSK_ secret)", "")
    kafka_ca_location: str = _doc(
        "CA bundle that verifies the brokers' TLS certificates (empty: the system's CAs)", ""
    )
    kafka_fetch_wait_ms: int = _doc(
        "longest a consumer's fetch waits at the broker for kafka_fetch_min_bytes to gather:"
        " under light load events arrive in fewer, larger batches (each fetch answered costs"
        " the broker a request), at the price of up to this much latency per hop",
        50,
    )
    kafka_fetch_min_bytes: int = _doc(
        "bytes a consumer's fetch waits for before it is answered, at most kafka_fetch_wait_ms"
        " (1: every new event answers it at once)",
        65536,
    )
    kafka_brokers: int = _doc("brokers of the local KRaft cluster (3 in the HA profile)", 1)
    kafka_broker_port_step: int = _doc(
        "broker n listens on kafka_port + (n-1) * step, its controller likewise", 1000
    )

    relay_batch_size: int = _doc("outbox rows the relay publishes per batch", 500)
    relay_idle_seconds: float = _doc(
        "relay's fallback poll when the outbox is empty (a commit wakes it at once via NOTIFY)", 0.5
    )
    saga_follow_up_seconds: float = _doc(
        "an async order that has not changed for this long is followed up: asked again for its"
        " stock answer (a message lost, a consumer down), or its payment step carried out again",
        120.0,
    )
    relay_linger_ms: float = _doc(
        "least time between two batches of the relay: under load rows gather into fewer, larger"
        " produce requests (each costs the broker a request and every follower a fetch); the"
        " first row after a quiet spell goes at once",
        20.0,
    )

    order_default_mode: str = _doc(
        "processing mode when a request names none: async or sync", "async"
    )
    order_partition_strategy: str = _doc(
        "message key of order events: order_id, customer_id or product_id", "order_id"
    )
    order_backlog_limit: int = _doc(
        "async orders in flight (accepted, not ended) at which POST /orders refuses new async"
        " orders with 503 + Retry-After until the saga catches up: past its sustained rate the"
        " backlog, and so accepted -> ended, would grow without bound; 3000 is 15-20 s of saga"
        " work at the sustained rate measured on two cores (0: never refuse)",
        3000,
    )
    product_service_url: str = _doc(
        "where order-service reaches product-service (derived: product instance 1; the gateway"
        " does not route the internal /reservations API)",
        "",
    )
    payment_decline_rate: float = _doc("share of payments the simulator declines", 0.05)
    payment_latency_ms: float = _doc("simulated payment provider latency", 20.0)
    payment_jitter_ms: float = _doc("random spread added to the simulated latency", 5.0)
    payment_seed: int = _doc("seed of the payment simulator's decisions", 42)

    cache_ttl_seconds: float = _doc("upper bound on how long a cached product may live", 30.0)
    payment_timeout_ms: float = _doc("longest wait for one answer of the payment provider", 1000.0)
    payment_attempts: int = _doc("tries of a payment call before the order is compensated", 3)
    cache_max_entries: int = _doc("products kept in each instance's read cache", 50000)
    page_size_max: int = _doc("largest page a list or search may ask for", 100)
    product_read_max_age: int = _doc(
        "seconds a shared cache (the gateway) may answer an anonymous product read or search"
        " before asking product-service again: how stale a browsing customer's page may be"
        " (0: not cached)",
        1,
    )

    prometheus_port: int = _doc("Prometheus server port (0: not started by `up`)", 9090)
    prometheus_scrape_interval: str = _doc("how often Prometheus scrapes every target", "5s")
    prometheus_retention: str = _doc("how long Prometheus keeps samples", "7d")
    alertmanager_port: int = _doc(
        "Alertmanager port: receives Prometheus' alerts, notifies the console (0: not started by `up`)",
        9093,
    )
    node_exporter_port: int = _doc("node exporter (the machine's metrics) port", 9100)
    nginx_exporter_port: int = _doc("nginx exporter (the gateway's stub_status) port", 9113)
    postgres_exporter_port: int = _doc("postgres exporter port", 9187)
    kafka_metrics_port: int = _doc("Kafka broker's JMX exporter agent port", 9404)
    zipkin_port: int = _doc("Zipkin server port (0: no Zipkin, no tracing)", 9411)
    zipkin_heap: str = _doc("Zipkin server JVM heap", "256m")
    zipkin_url: str = _doc(
        "where services send spans, e.g. http://zipkin:9411 (derived: the local Zipkin)", ""
    )
    tracing_sample_ratio: float = _doc(
        "share of new traces sampled; a request carrying a sampled traceparent is always traced",
        0.1,
    )
    aws_emf_namespace: str = _doc(
        "CloudWatch namespace: when set, services also log key metrics in Embedded Metric Format",
        "",
    )

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ) if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is None or raw == "":
                continue
            kind: Any = type(f.default)
            try:
                values[f.name] = kind(raw)
            except ValueError as exc:
                raise ValueError(f"{ENV_PREFIX}{f.name.upper()}={raw!r}: {exc}") from exc
        return cls(**values)

    @staticmethod
    def env_names() -> list[str]:
        return [ENV_PREFIX + f.name.upper() for f in fields(Settings)]

    # Derived values -------------------------------------------------------------------------
    @property
    def data_path(self) -> Path:
        return Path(self.data_dir) if self.data_dir else PROJECT_ROOT / "data"

    @property
    def jwks_location(self) -> str:
        return self.auth_jwks_url or str(self.data_path / "auth" / "jwks.json")

    @property
    def service_token_path(self) -> Path:
        return (
            Path(self.service_token_file)
            if self.service_token_file
            else self.data_path / "auth" / "service-token"
        )

    @property
    def kafka_servers(self) -> str:
        if self.kafka_bootstrap:
            return self.kafka_bootstrap
        step = self.kafka_broker_port_step
        return ",".join(
            f"127.0.0.1:{self.kafka_port + n * step}" for n in range(self.kafka_brokers)
        )

    @property
    def product_service(self) -> str:
        return self.product_service_url or f"http://127.0.0.1:{self.product_port}"

    @property
    def postgres_credentials_path(self) -> Path:
        """Where the local runtime keeps the PostgreSQL passwords it generated (one file a role,
        mode 0600, plus a libpq password file for psql, pg_dump and pgbench)."""
        return self.data_path / "auth" / "postgres"

    def database_role(self, service: str) -> str:
        """The login role ``service``'s processes connect as."""
        return self.postgres_user or f"{service}_service"

    @staticmethod
    def database_owner(service: str) -> str:
        """The role that owns ``service``'s database and tables: migrations run as it."""
        return f"{service}_owner"

    def postgres_password_of(self, role: str) -> str:
        """A role's password: the setting when given, else the file the local runtime made."""
        if role == self.postgres_admin_user and self.postgres_admin_password:
            return self.postgres_admin_password
        if role == self.postgres_user and self.postgres_password:
            return self.postgres_password
        try:
            return (self.postgres_credentials_path / role).read_text().strip()
        except FileNotFoundError:
            return ""

    def database_url(self, service: str) -> str:
        explicit = getattr(self, f"{service}_database_url")
        if explicit:
            return str(explicit)
        return self._postgres_url(self.database_role(service), service)

    def admin_database_url(self, service: str = "", database: str = "") -> str:
        """``postgres_admin_user``'s URL to ``service``'s database (or to ``database``; neither:
        the maintenance database ``postgres``): provisioning, migrations (as the owner role),
        backups and the lab's ceilings, never a service."""
        explicit = str(getattr(self, f"{service}_database_url")) if service else ""
        if explicit:  # the same server, the admin's credentials
            parts = urlsplit(explicit)
            netloc = f"{self._userinfo(self.postgres_admin_user)}@{parts.netloc.rpartition('@')[2]}"
            path = f"/{database}" if database else parts.path
            return urlunsplit((parts.scheme, netloc, path, parts.query, parts.fragment))
        return self._postgres_url(self.postgres_admin_user, database or service or "postgres")

    def _userinfo(self, role: str) -> str:
        password = self.postgres_password_of(role)
        return quote(role, safe="") + (f":{quote(password, safe='')}" if password else "")

    @property
    def postgres_ports(self) -> list[int]:
        """The port of each PostgreSQL node of the private cluster (one, or the HA pair)."""
        step = self.postgres_node_port_step
        return [self.postgres_port + n * step for n in range(self.postgres_nodes)]

    def _postgres_url(self, role: str, database: str) -> str:
        # every node, the primary found by libpq's rules: the first that takes writes
        host = ",".join(f"{self.postgres_host}:{port}" for port in self.postgres_ports)
        url = f"postgresql://{self._userinfo(role)}@{host}/{database}"
        tls = {"sslmode": self.postgres_sslmode, "sslrootcert": self.postgres_sslrootcert,
               "target_session_attrs": "read-write" if self.postgres_nodes > 1 else ""}  # fmt: skip
        query = urlencode({k: v for k, v in tls.items() if v}, safe="/")
        return f"{url}?{query}" if query else url

    def service_port(self, service: str, instance: int = 1) -> int:
        base = int(getattr(self, f"{service}_port"))
        return base + (instance - 1) * self.instance_port_step

    def topics(self) -> dict[str, int]:
        result: dict[str, int] = {}
        for item in self.topic_partitions.split(","):
            name, _, count = item.strip().partition("=")
            result[name] = int(count or 1)
        return result

    def as_env(self) -> dict[str, str]:
        """The settings as environment variables, to hand to a child process."""
        env = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "data_dir":
                value = str(self.data_path)
            env[ENV_PREFIX + f.name.upper()] = str(value)
        return env
