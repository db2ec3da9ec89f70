"""The platform tooling above the services: the CLI, the local runtime, the operator console, the
benchmarks and the performance lab. The services never import it."""
