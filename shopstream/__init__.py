"""shopstream: shared plumbing (configuration, Kafka, outbox, metrics, logging) and the runtime."""
