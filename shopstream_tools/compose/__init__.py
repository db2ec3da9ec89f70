"""The compose stack: build shopstream's images and run docker-compose.yml with podman or Docker."""
