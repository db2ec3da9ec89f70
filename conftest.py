# The real-platform fixtures (PostgreSQL, Kafka, services, gateway) shared by every test folder.
pytest_plugins = ["tests.platform_fixture"]
